// The fan-out stage's rate budgets (docs/decisions/0012-bulk-budgets.md): claims the due
// recipients of budgets with room in their current one-second window (the budget rows locked
// until the batch commits, so every worker process counts against the same window), and after
// the batch is decided keeps only the recipients that fit; the others stay pending for a later
// window. Budgeted recipients are not in the lanes' plain claim.
import type { PoolClient } from '../db/pools.js';
import { claimBudgetRecipients, lockOpenBudgets, spendBudgets } from '../db/stores/rate-budget-store.js';
import { admitByBudget, recipientKey, type BudgetWindow } from '../domain/budget-admission.js';
import type { DueRecipient, FanOutDecision, PlannedFanOut } from '../domain/fan-out-decision.js';

export interface BudgetedClaim {
  recipients: DueRecipient[];
  /** recipientKey → budget id, in claim order. */
  budgetOf: Map<string, number>;
  windows: Map<number, BudgetWindow>;
  /** Some budget had due work but no room (or another worker held it): look again next second. */
  held: boolean;
}

/** Claims up to `limit` budgeted recipients, at most each open budget's room. */
export async function claimBudgeted(client: PoolClient, limit: number): Promise<BudgetedClaim> {
  const claim: BudgetedClaim = { recipients: [], budgetOf: new Map(), windows: new Map(), held: false };
  if (limit <= 0) return claim;
  const { open, held } = await lockOpenBudgets(client);
  claim.held = held;
  for (const budget of open) {
    const room = limit - claim.recipients.length;
    if (room <= 0) {
      claim.held = true;
      break;
    }
    // A recipient creates at least one delivery (or none): never more recipients than room.
    const claimed = await claimBudgetRecipients(client, budget.id, Math.min(room, budget.room));
    claim.windows.set(budget.id, { room: budget.room, used: budget.used });
    for (const r of claimed) {
      claim.recipients.push(r);
      claim.budgetOf.set(recipientKey(r.notificationId, r.userId), budget.id);
    }
    if (claimed.length === budget.room) claim.held = true;
  }
  return claim;
}

/**
 * Decides the batch, keeping only the budgeted recipients that fit their windows (the rest
 * are decided again without them), and adds what the kept ones create to the windows.
 * Returns the decision and whether recipients were held back.
 */
export async function decideWithinBudgets(
  client: PoolClient,
  claim: BudgetedClaim,
  planned: PlannedFanOut,
  decide: (planned: PlannedFanOut) => FanOutDecision,
): Promise<{ decision: FanOutDecision; held: boolean }> {
  const first = decide(planned);
  if (claim.budgetOf.size === 0) return { decision: first, held: claim.held };
  const { held, spent } = admitByBudget(first, claim.budgetOf, claim.windows);
  await spendBudgets(client, spent);
  if (held.size === 0) return { decision: first, held: claim.held };
  const admitted = planned.recipients.filter(
    (p) => !held.has(recipientKey(p.recipient.notificationId, p.recipient.userId)),
  );
  return { decision: decide({ ...planned, recipients: admitted }), held: true };
}
