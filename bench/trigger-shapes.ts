// The insert statements the trigger benchmarks time (bench:overview, bench:callbacks): rows go in
// as the pipeline writes them: delivery events in statements of 100 and of 1 (a claim or outcome
// batch; a single cancel), notifications in statements of 50 and of 1 (the api's group commit
// under load; one request alone). `$1` of the notification statements is a service id.

export interface Shape {
  table: 'delivery_events' | 'notifications';
  /** The trigger under test on that table: `<table>_<suffix>`. */
  trigger: string;
  rowsPerStatement: number;
  sql: string;
}

/** The four shapes, each naming its table's trigger `<table>_<suffix>`. */
export function triggerShapes(suffix: string): Shape[] {
  const events = [100, 1].map((n) => ({
    table: 'delivery_events' as const,
    trigger: `delivery_events_${suffix}`,
    rowsPerStatement: n,
    sql: `INSERT INTO delivery_events (delivery_id, notification_id, channel, lane, state, attempt)
        SELECT gen_random_uuid(), 'bench#' || i, (ARRAY['webhook', 'email', 'sms', 'push'])[1 + i % 4],
               (ARRAY['transactional', 'bulk'])[1 + i % 2], (ARRAY['sending', 'sent', 'delivered'])[1 + i % 3], 1
          FROM generate_series(1, ${String(n)}) AS i`,
  }));
  const notifications = [50, 1].map((n) => ({
    table: 'notifications' as const,
    trigger: `notifications_${suffix}`,
    rowsPerStatement: n,
    sql: `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
          SELECT 'bench#' || gen_random_uuid(), now(), $1, (ARRAY['transactional', 'bulk'])[1 + i % 2], 'general',
                 '{in_app}', '{"default": {"title": "t", "body": "b"}}', now()
            FROM generate_series(1, ${String(n)}) AS i`,
  }));
  return [...events, ...notifications];
}
