// Typed events the pipeline emits, so tests and metrics can wait for work instead of time.
import { EventEmitter } from 'node:events';
import type { DeliveryState } from '../domain/delivery.js';

export interface PipelineEventMap {
  'delivery.finished': [
    { id: string; notificationId: string; channel: string; state: DeliveryState; attempt: number },
  ];
}

export class PipelineEvents extends EventEmitter<PipelineEventMap> {}
