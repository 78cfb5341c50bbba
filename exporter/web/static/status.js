// /status#checklist--item (a link from an alert or a chat) opens that item's evidence.
const linked = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
if (linked && linked.matches('li.item')) {
  linked.querySelector('details').open = true;
  linked.closest('details.section').open = true;
}

// Posts to the attestation API (DESIGN.md: POST /api/v1/attestations, bearer token with the
// attest role); the token lives in sessionStorage, so it goes when the tab closes. With the
// browser's Basic login instead, the page's anti-forgery token goes along.
(() => {
  if (!document.getElementById('token-form')) return;
  const b = document.body, s = sessionStorage;
  const csrf = document.querySelector('meta[name=csrf-token]');
  const on = () => b.classList.toggle(
    'has-token', !!s.getItem('rt-token') || b.dataset.attester === '1');
  document.getElementById('by').value = localStorage.getItem('rt-by') || '';
  document.getElementById('token-form').addEventListener('submit', e => {
    e.preventDefault();
    s.setItem('rt-token', document.getElementById('token').value.trim());
    localStorage.setItem('rt-by', document.getElementById('by').value.trim());
    document.getElementById('token').value = ''; on();
    e.target.closest('details').open = false;
  });
  document.getElementById('forget').addEventListener('click', () => {
    s.removeItem('rt-token'); on();
  });
  // Posts to the API at `path` what `body()` makes of form `f`: its button disabled meanwhile,
  // its output saying `busy`, then what `done` makes of the answer (the page reloads after
  // `reload` ms) or what went wrong.
  const post = (f, path, busy, reload, body, done) => f.addEventListener('submit', async e => {
    e.preventDefault();
    const out = f.querySelector('output'), button = f.querySelector('button');
    button.disabled = true; out.textContent = busy;
    try {
      // Without the user:password@ a page opened that way has in its URL: fetch refuses those.
      const api = new URL(path, location.href);
      api.username = api.password = '';
      const r = await fetch(api, {
        method: 'POST',
        headers: Object.assign({'Content-Type': 'application/json'}, s.getItem('rt-token')
          ? {'Authorization': 'Bearer ' + s.getItem('rt-token')}
          : csrf ? {'X-CSRF-Token': csrf.content} : {}),
        credentials: 'same-origin',
        body: JSON.stringify(body())});
      if (r.ok) {
        out.textContent = await done(r);
        setTimeout(() => location.reload(), reload); return;
      }
      out.textContent = r.status + ' ' + ((await r.text()).slice(0, 200) || r.statusText);
    } catch (err) { out.textContent = String(err); }
    button.disabled = false;
  });
  document.querySelectorAll('form.attest').forEach(f => post(
    f, 'api/v1/attestations', 'sending…', 600,
    () => ({checklist: f.dataset.checklist, item: f.dataset.item,
            by: localStorage.getItem('rt-by') || 'status page', note: f.note.value}),
    async () => 'attested'));
  // "Run now" (POST /api/v1/runs): the item, or every probed item of the section, at once.
  document.querySelectorAll('form.run').forEach(f => post(
    f, 'api/v1/runs', 'running…', 800,
    () => Object.assign({checklist: f.dataset.checklist},
                        f.dataset.item ? {item: f.dataset.item} : {section: f.dataset.section}),
    async r => {
      const done = await r.json(), failing = done.results.filter(x => !x.passing).length;
      return failing ? failing + ' failing' : 'passing';
    }));
  on();
})();
