-- Events carry the lane their delivery ran in (service store migration 0013).
ALTER TABLE delivery_events ADD COLUMN lane text;
