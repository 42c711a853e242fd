// Keeps the last few uploaded files in the browser (IndexedDB), so a job's page can play its song
// after a reload too. The service itself deletes uploads once they are analysed.
const DB = "genre-uploads", STORE = "files", KEEP = 5;

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run(mode, work) {
  return open().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = work(tx.objectStore(STORE));
    tx.oncomplete = () => { db.close(); resolve(result.result); };
    tx.onerror = () => { db.close(); reject(tx.error); };
  }));
}

export async function keepUpload(jobId, file) {
  try {
    await run("readwrite", (store) => store.put({ file, at: Date.now() }, jobId));
    const keys = await run("readonly", (store) => store.getAllKeys());
    if (keys.length > KEEP) {
      const entries = await run("readonly", (store) => store.getAll());
      const old = keys.map((key, i) => [key, entries[i].at]).sort((a, b) => a[1] - b[1]).slice(0, keys.length - KEEP);
      await run("readwrite", (store) => { old.forEach(([key]) => store.delete(key)); return store.count(); });
    }
  } catch {
    // Private windows may refuse storage; playback then lasts as long as the tab.
  }
}

export async function findUpload(jobId) {
  try {
    const entry = await run("readonly", (store) => store.get(jobId));
    return entry ? entry.file : null;
  } catch {
    return null;
  }
}
