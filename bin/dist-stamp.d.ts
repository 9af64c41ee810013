// Types of bin/dist-stamp.js (plain JS: bin/outpost.js and scripts/build.js run without a compiler).
export const SOURCE_DIRS: string[];
export const EXTRA_INPUTS: string[];
export const STAMP_FILE: string;
export const RACY_MS: number;
export function listInputs(root: string): string[];
export function statInputs(root: string, files: string[]): Record<string, string>;
export function contentHash(root: string, file: string): Promise<string>;
export function distIsCurrent(root: string): Promise<boolean>;
