-- Archived recipients keep the rate budget that paced them (service store migration 0029,
-- docs/budgets.md): the copy populates archive rows by column name. No reference to
-- rate_budgets, which the archive does not hold: the id is kept as it was.
ALTER TABLE recipients ADD COLUMN budget_id bigint;
