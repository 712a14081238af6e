// Metrics of sends beyond one step: workflow runs and digests (docs/workflows.md), topic sends
// expanded into recipients and recurring schedules' occurrences (docs/topics.md).
import { Counter, type Registry } from 'prom-client';

export interface WorkflowMetrics {
  /** Workflow runs moved forward, by the state they were left in (running, done). */
  workflowSteps: Counter<'state'>;
  /** Digests closed into their one summary. */
  workflowDigests: Counter;
  topicRecipientsExpanded: Counter;
  schedulesFired: Counter<'outcome'>;
}

export function workflowMetrics(registry: Registry): WorkflowMetrics {
  return {
    workflowSteps: new Counter({
      name: 'herald_workflow_steps_total',
      help: 'Workflow runs moved forward by a worker, per state they were left in (running: waiting again; done).',
      labelNames: ['state'],
      registers: [registry],
    }),
    workflowDigests: new Counter({
      name: 'herald_workflow_digests_total',
      help: 'Digests closed into their one summary notification.',
      registers: [registry],
    }),
    topicRecipientsExpanded: new Counter({
      name: 'herald_topic_recipients_expanded_total',
      help: "Recipients created from topic sends' subscribers by the worker (opted-out users not counted).",
      registers: [registry],
    }),
    schedulesFired: new Counter({
      name: 'herald_schedule_occurrences_total',
      help: 'Occurrences of recurring schedules per time zone, by outcome (sent, skipped: missed beyond the grace period or nobody to send to).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
