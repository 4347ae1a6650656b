// Switchyard admin: small progressive enhancements over the server-rendered pages. Live numbers
// by polling JSON endpoints, keyboard rating, busy buttons. All text goes in via textContent.
'use strict';

(function () {
  const page = document.body.dataset.page || '';

  async function getJson(url) {
    const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    if (res.status === 401) {
      window.location.href = '/login?next=' + encodeURIComponent(window.location.pathname + window.location.search);
      throw new Error('logged out');
    }
    if (!res.ok) throw new Error('HTTP ' + res.status);
    return res.json();
  }

  /** Run `fn` every `ms` while the tab is visible; stop when it returns false. */
  function poll(ms, fn) {
    let timer = null;
    const tick = async () => {
      timer = null;
      if (document.hidden) return schedule();
      let again = true;
      try { again = (await fn()) !== false; } catch (e) { again = !(e instanceof Error && e.message === 'logged out'); }
      if (again) schedule();
    };
    const schedule = () => { if (!timer) timer = setTimeout(tick, ms); };
    schedule();
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text == null ? '' : String(text);
    if (className) td.className = className;
    return td;
  }

  // Busy state for slow submits (model probe, console); named buttons keep their value in the form data.
  document.addEventListener('submit', (ev) => {
    const btn = ev.submitter;
    if (btn && btn.dataset.busy) {
      setTimeout(() => { btn.textContent = btn.dataset.busy; btn.disabled = true; }, 0);
    }
  });

  if (page === 'overview') {
    poll(5000, async () => {
      const data = await getJson('/api/overview');
      for (const el of document.querySelectorAll('[data-live]')) {
        const v = data.display[el.dataset.live];
        if (v !== undefined) el.textContent = v;
      }
      for (const m of data.models) {
        const row = document.querySelector('#model-health tr[data-model="' + CSS.escape(m.id) + '"]');
        if (!row) continue;
        const state = row.querySelector('[data-field="state"]');
        state.textContent = m.state;
        state.className = 'state state-' + m.state;
        const health = row.querySelector('[data-field="health"]');
        const span = document.createElement('span');
        span.className = m.healthy ? 'ok' : 'bad';
        span.textContent = !m.enabled ? 'disabled' : m.healthy ? 'healthy' : 'unhealthy';
        health.replaceChildren(span);
        row.querySelector('[data-field="weight"]').textContent = String(m.weight);
        row.querySelector('[data-field="inflight"]').textContent = String(m.inflight);
        row.querySelector('[data-field="failures"]').textContent = String(m.consecutiveFailures);
        row.querySelector('[data-field="lastError"]').textContent = m.lastError || '';
      }
    });
  }

  if (page === 'logs') {
    const live = document.getElementById('live-logs');
    const body = document.getElementById('log-lines');
    poll(3000, async () => {
      if (!live || !live.checked) return true;
      const data = await getJson('/api/logs' + window.location.search);
      const rows = data.lines.map((l) => {
        const tr = document.createElement('tr');
        tr.className = 'lvl-' + l.level;
        tr.append(cell(l.ts, 'nowrap'), cell(l.level), cell(l.msg));
        const rid = document.createElement('td');
        if (l.requestId) {
          const a = document.createElement('a');
          a.href = '/logs?request_id=' + encodeURIComponent(l.requestId);
          a.textContent = l.requestId;
          rid.append(a);
        }
        tr.append(rid, cell(l.fields, 'fields'));
        return tr;
      });
      body.replaceChildren(...rows);
      document.getElementById('no-logs')?.remove();
      return true;
    });
  }

  if (page === 'learning') {
    const panel = document.getElementById('learner-panel');
    const status = document.getElementById('learner-status');
    if (panel && panel.dataset.running === '1') {
      poll(700, async () => {
        const data = await getJson('/api/learning/status');
        const r = data.runner;
        if (!r.running) {
          window.location.replace('/learning');
          return false;
        }
        if (status) status.textContent = 'Running' + (r.progress ? ': ' + r.progress.phase : '') + ' (' + Math.round((r.elapsedMs || 0) / 100) / 10 + ' s)…';
        const bar = document.getElementById('learner-progress');
        if (bar && r.progress && typeof r.progress.fraction === 'number') { bar.max = 1; bar.value = r.progress.fraction; }
        return true;
      });
    }
  }

  if (page === 'rate') {
    document.addEventListener('keydown', (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const t = ev.target;
      if (t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
      if (ev.key >= '1' && ev.key <= '5') {
        const btn = document.querySelector('.rate-item button[data-rating="' + ev.key + '"]');
        if (btn) { ev.preventDefault(); btn.click(); }
      } else if (ev.key === 'n' || ev.key === 'N') {
        const skip = document.getElementById('skip-link');
        if (skip) { ev.preventDefault(); window.location.href = skip.getAttribute('href'); }
      }
    });
  }

  if (page === 'console') {
    const prompt = document.querySelector('.console-form textarea[name="prompt"]');
    prompt?.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        prompt.form?.requestSubmit();
      }
    });
  }
})();
