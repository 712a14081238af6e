// Which budgeted recipients of a fan-out batch fit their rate budgets' current windows
// (docs/decisions/0012-bulk-budgets.md). A recipient costs the deliveries it creates that are
// not suppressed; recipients are admitted in claim order until the next would not fit, except
// that an empty window admits one recipient whatever it costs, so a recipient with more
// deliveries than the budget's rate is not held forever.
import type { FanOutDecision } from './fan-out-decision.js';

export interface BudgetWindow {
  /** Deliveries the window still has room for. */
  room: number;
  /** Deliveries already created in the window. */
  used: number;
}

export interface BudgetAdmission {
  /** Recipients (`recipientKey`) held back for a later window. */
  held: Set<string>;
  /** Deliveries created per budget id, to add to its window. */
  spent: Map<number, number>;
}

export const recipientKey = (notificationId: string, userId: string) => `${notificationId}\n${userId}`;

/**
 * `budgetOf` maps the budgeted recipients (by recipientKey, in claim order) to their budget
 * id; recipients not in it are not paced.
 */
export function admitByBudget(
  decision: Pick<FanOutDecision, 'deliveries'>,
  budgetOf: ReadonlyMap<string, number>,
  windows: ReadonlyMap<number, BudgetWindow>,
): BudgetAdmission {
  const cost = new Map<string, number>();
  for (const d of decision.deliveries) {
    const key = recipientKey(d.notificationId, d.userId);
    if (budgetOf.has(key) && d.suppressed === undefined) cost.set(key, (cost.get(key) ?? 0) + 1);
  }
  const held = new Set<string>();
  const spent = new Map<number, number>();
  const full = new Set<number>();
  for (const [key, budgetId] of budgetOf) {
    const window = windows.get(budgetId);
    const n = cost.get(key) ?? 0;
    const used = spent.get(budgetId) ?? 0;
    const fits = window !== undefined && (n <= window.room - used || (window.used + used === 0 && n > 0));
    if (full.has(budgetId) || !fits) {
      full.add(budgetId);
      held.add(key);
    } else spent.set(budgetId, used + n);
  }
  return { held, spent };
}
