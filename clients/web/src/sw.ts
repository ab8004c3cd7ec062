// Placeholder service worker so /sw.js is served; the views' app-shell worker replaces it.
export {};
