// Resolves user ids to full names (get-user), with a cache, so feed lines and
// lists can say "Ann Smith" instead of "u-1234". Unknown ids stay as ids.

export class Names {
  constructor(conn) {
    this.conn = conn;
    this.cache = new Map(); // id -> full name | null (lookup failed)
    this.pending = new Map(); // id -> Promise
  }

  remember(id, fullName) {
    if (id !== undefined && id !== null && fullName) this.cache.set(String(id), fullName);
  }

  /** The known name, or the id itself when not (yet) known. */
  label(id) {
    if (id === undefined || id === null || id === "") return "someone";
    return this.cache.get(String(id)) || String(id);
  }

  /** Look the id up once; resolves with the label. */
  async resolve(id) {
    if (id === undefined || id === null || id === "") return "someone";
    const key = String(id);
    if (this.cache.has(key)) return this.cache.get(key) || key;
    if (!this.pending.has(key)) {
      const p = this.conn
        .query("get-user", { userId: key })
        .then((d) => {
          this.cache.set(key, d.fullName || null);
          return d.fullName || key;
        })
        .catch(() => {
          this.cache.set(key, null);
          return key;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return this.pending.get(key);
  }
}
