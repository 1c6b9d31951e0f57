// Types of scripts/build-dashboard.mjs (plain JavaScript, so that `npm run build:dashboard` needs no compiler), for the tests that import it.
export declare const PUBLIC_DIR: string;
/** Type-checks dashboard/ with its own tsconfig; throws with the formatted diagnostics. */
export declare function typecheckDashboard(): Promise<void>;
/** Every file of public/, built in memory: name → contents. */
export declare function buildDashboardFiles(options?: { dev?: boolean }): Promise<Map<string, Buffer>>;
/** Replaces public/ with a fresh build and returns the file sizes. */
export declare function buildDashboard(options?: { dev?: boolean; typecheck?: boolean }): Promise<Record<string, number>>;
/** The files currently in public/, for the drift check. */
export declare function readPublicFiles(): Map<string, Buffer>;
