// Constants the build (build.mjs) defines for the service worker.
/** URL paths of the hashed app-shell files (JS, CSS) of this build. */
declare const __SHELL_ASSETS__: string[];
/** Changes whenever any shell file changes; name caches after it. */
declare const __BUILD_VERSION__: string;
