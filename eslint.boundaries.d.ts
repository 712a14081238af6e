// Types of eslint.boundaries.js, for the test that lints fixtures against it.
import type { Linter } from 'eslint';

export declare const allowedImports: Record<string, string[] | null>;
export declare const boundaries: Linter.Config[];
