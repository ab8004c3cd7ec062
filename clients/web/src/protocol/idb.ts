// A small promise wrapper over one IndexedDB database with a few key-value stores.
// Each call is its own transaction; a put resolves only once its transaction completed
// (the data is committed), which is what "in the outbox" has to mean.

const DB_NAME = "fast-shoot";
const DB_VERSION = 1;
export const STORES = ["settings", "identities", "outbox", "replicas"] as const;
export type StoreName = (typeof STORES)[number];

let opening: Promise<IDBDatabase> | null = null;

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export function openDb(): Promise<IDBDatabase> {
  if (opening) return opening;
  opening = new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      for (const name of STORES) {
        if (!req.result.objectStoreNames.contains(name)) req.result.createObjectStore(name);
      }
    };
    req.onsuccess = () => {
      const db = req.result;
      // Another tab upgrading the schema: let it, and reopen on next use.
      db.onversionchange = () => {
        db.close();
        opening = null;
      };
      resolve(db);
    };
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error("The local database is blocked by another tab."));
  });
  opening.catch(() => {
    opening = null;
  });
  return opening;
}

async function run<T>(store: StoreName, mode: IDBTransactionMode, body: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDb();
  const tx = db.transaction(store, mode, { durability: "strict" } as IDBTransactionOptions);
  const result = request(body(tx.objectStore(store)));
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("The local database refused the change."));
  });
  return result;
}

export function idbGet(store: StoreName, key: string): Promise<unknown> {
  return run(store, "readonly", (s) => s.get(key));
}

export async function idbPut(store: StoreName, key: string, value: unknown): Promise<void> {
  await run(store, "readwrite", (s) => s.put(value, key));
}

export async function idbDelete(store: StoreName, key: string): Promise<void> {
  await run(store, "readwrite", (s) => s.delete(key));
}

/** Forget the cached connection (tests that replace the IndexedDB implementation). */
export function resetDbForTests(): void {
  opening = null;
}
