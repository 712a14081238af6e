// Rate budgets (docs/budgets.md): a calling service's named rates for its bulk sends.

/** A budget's name: lower case letters, digits, `_`, `.`, `-` (as the migration checks). */
export const rateBudgetNamePattern = '^[a-z0-9][a-z0-9_.-]{0,63}$';

/** The budget that applies to a service's bulk notifications naming none. */
export const defaultBudgetName = 'default';

/** Highest rate a budget may have, deliveries per second (as the migration checks). */
export const maxBudgetPerSecond = 100_000;
