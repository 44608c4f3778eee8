// Shared by the pages: the token (kept in this browser only), API calls, escaping, the header.
const crmind = (() => {
  const KEY = "crmind-token";
  const linked = new URLSearchParams(location.hash.slice(1));
  if (linked.has("token")) { localStorage.setItem(KEY, linked.get("token")); history.replaceState(null, "", location.pathname + location.search); }
  const token = () => localStorage.getItem(KEY) || "";
  const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
  async function api(path, opts = {}) {
    const res = await fetch(path, {...opts, headers: {"Authorization": "Bearer " + token(), "Content-Type": "application/json", ...(opts.headers || {})}});
    if (res.status === 401) { location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("sign in first"); }
    const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
    if (!res.ok) throw new Error(typeof body === "string" ? body : (Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail));
    return body;
  }
  // Server-sent events over a POST (EventSource can't send a body or a bearer token).
  async function stream(path, body, onEvent) {
    const res = await fetch(path, {method: "POST", body: JSON.stringify(body), headers: {"Authorization": "Bearer " + token(), "Content-Type": "application/json", "Accept": "text/event-stream"}});
    if (res.status === 401) { location.href = "/signin?next=" + encodeURIComponent(location.pathname); return; }
    if (!res.ok) { const b = await res.json().catch(() => ({detail: res.statusText})); onEvent("error", {message: typeof b.detail === "string" ? b.detail : JSON.stringify(b.detail)}); return; }
    const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
    for (;;) {
      const {done, value} = await reader.read(); if (done) break;
      buf += dec.decode(value, {stream: true});
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const raw = buf.slice(0, i); buf = buf.slice(i + 2);
        let ev = "message", data = "";
        for (const line of raw.split("\n")) { if (line.startsWith("event:")) ev = line.slice(6).trim(); else if (line.startsWith("data:")) data += line.slice(5).trim(); }
        if (data) onEvent(ev, JSON.parse(data));
      }
    }
  }
  const PLURAL = {account:"accounts", contact:"contacts", lead:"leads", opportunity:"opportunities", activity:"activities", "case":"cases", article:"articles", event:"events"};
  const recordLink = (ref) => { const [obj, id] = ref.split(":"); return PLURAL[obj] ? `/records/${obj}/${id}` : null; };
  async function header(active) {
    const h = document.createElement("header");
    h.innerHTML = `<b>crmind</b><nav><a href="/chat" data-p="chat">Assistant</a><a href="/console" data-p="console">Records</a><a href="/duplicates" data-p="duplicates">Duplicates</a><a href="/rules" data-p="rules">Rules</a><a href="/drift" data-p="drift">Drift</a></nav><span id="who"></span>`;
    h.querySelector(`[data-p="${active}"]`)?.classList.add("on");
    document.body.prepend(h);
    if (!token()) { location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search); return null; }
    const me = await api("/v1/me");
    h.querySelector("#who").innerHTML = `${esc(me.name)} · <span class="pill">${esc(me.role)}</span> · <a href="/signin">switch</a>`;
    return me;
  }
  return {token, esc, api, stream, recordLink, header, KEY};
})();
