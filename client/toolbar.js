// Toolbar: the compact bar above a <kvm-console> — special keys, paste as
// keystrokes, clipboard, power actions, scaling, remote resize, fullscreen,
// reconnect and the status line. It only calls the console's public API.

/** Combos offered when the server's hello lists none. */
const DEFAULT_COMBOS = [
  ['ctrl-alt-del', 'Ctrl+Alt+Del'],
  ...Array.from({ length: 12 }, (_, i) => [`ctrl-alt-f${i + 1}`, `Ctrl+Alt+F${i + 1}`]),
  ['ctrl-alt-backspace', 'Ctrl+Alt+Backspace'], ['alt-tab', 'Alt+Tab'], ['alt-f4', 'Alt+F4'],
  ['win', 'Windows key'], ['printscreen', 'Print Screen'], ['sysrq', 'SysRq'], ['esc', 'Esc'],
].map(([name, label]) => ({ name, label }));

const HTML = `<button class="keys" popovertarget="keys-menu" title="Special keys">Keys ▾</button>
<div id="keys-menu" class="menu" popover role="menu"></div>
<button class="paste" title="Type text as keystrokes">Paste…</button>
<button class="clip" title="Clipboard">Clipboard…</button>
<button class="power" popovertarget="power-menu" hidden>Power ▾</button>
<div id="power-menu" class="menu" popover role="menu"></div>
<select class="scale" title="Scaling"><option value="fit">Fit</option><option value="1:1">1:1</option></select>
<label class="fit-remote" title="Resize the remote display to fit this window"><input type="checkbox" class="resize-remote">Resize remote to fit</label>
<button class="fs" title="Fullscreen (keyboard lock)">Fullscreen</button>
<button class="reconnect" title="Reconnect">Reconnect</button>
<span class="status" aria-live="polite"></span>
<dialog class="paste-dlg"><form method="dialog">
<label>Type as keystrokes<textarea rows="6" cols="48" spellcheck="false"></textarea></label>
<label>Guest keyboard layout <select class="layout"></select></label>
<menu><button value="type" class="type">Type</button><button value="">Cancel</button></menu></form></dialog>
<dialog class="clip-dlg"><form method="dialog">
<label>Console clipboard<textarea rows="6" cols="48" spellcheck="false"></textarea></label>
<menu><button value="send" class="send">Send to console</button><button value="copy" class="copy">Copy here</button><button value="">Close</button></menu></form></dialog>
<dialog class="confirm-dlg"><form method="dialog"><p></p>
<menu><button value="ok" class="ok">OK</button><button value="" autofocus>Cancel</button></menu></form></dialog>`;

/**
 * Toolbar builds its controls into bar and drives console through its
 * public API and events.
 */
export class Toolbar {
  /**
   * @param {import('./console.js').KvmConsole} console
   * @param {HTMLElement} bar
   */
  constructor(console, bar) {
    this.console = console;
    this.bar = bar;
    bar.innerHTML = HTML;
    /** @param {string} s */
    const $ = (s) => /** @type {any} */ (bar.querySelector(s));
    this.$ = $;
    this.status = $('.status');

    $('#keys-menu').addEventListener('click', (e) => this.menuClick(e, (name) => console.sendKeys(name)));
    $('#power-menu').addEventListener('click', (e) => this.menuClick(e, (name, label) => this.confirm(
      `${label}: are you sure?`, () => console.action(name))));
    for (const m of [$('#keys-menu'), $('#power-menu')]) m.addEventListener('beforetoggle', (e) => this.place(e));

    const paste = $('.paste-dlg');
    $('.paste').onclick = () => { paste.returnValue = ''; paste.showModal(); };
    paste.addEventListener('close', () => {
      const text = paste.querySelector('textarea').value;
      if (paste.returnValue === 'type' && text) {
        console.typeText(text, paste.querySelector('.layout').value || 'us');
        paste.querySelector('textarea').value = '';
      }
      console.focus();
    });

    const clip = $('.clip-dlg');
    $('.clip').onclick = () => {
      clip.querySelector('textarea').value = console.clipboardText;
      $('.clip').classList.remove('new');
      clip.returnValue = '';
      clip.showModal();
    };
    clip.addEventListener('close', () => {
      const text = clip.querySelector('textarea').value;
      if (clip.returnValue === 'send') console.sendClipboard(text);
      if (clip.returnValue === 'copy') navigator.clipboard?.writeText(text).catch(() => {});
      console.focus();
    });
    console.addEventListener('clipboard', (/** @type {any} */ e) => {
      if (clip.open) clip.querySelector('textarea').value = e.detail.text;
      else $('.clip').classList.add('new');
    });

    const scale = $('.scale');
    scale.value = console.scale;
    scale.onchange = () => { console.scale = scale.value; console.focus(); };
    this.setupResize();

    $('.fs').onclick = () => {
      const p = document.fullscreenElement ? console.exitFullscreen() : console.enterFullscreen();
      p.catch(() => {});
    };
    $('.reconnect').onclick = () => { console.connect(); console.focus(); };

    console.addEventListener('connect', (/** @type {any} */ e) => this.setup(e.detail));
    console.addEventListener('status', () => this.update());
    window.setInterval(() => this.update(), 1000);
    if (console.hello) this.setup(console.hello);
    this.update();
  }

  /**
   * Fills the menus from the server's hello.
   * @param {any} hello
   */
  setup(hello) {
    /** @param {any} c */
    const item = (c) => ({ name: String(c.name ?? c.Name ?? c), label: String(c.label ?? c.Label ?? c.name ?? c.Name ?? c) });
    const combos = Array.isArray(hello.combos) && hello.combos.length ? hello.combos.map(item) : DEFAULT_COMBOS;
    this.fill(this.$('#keys-menu'), combos);
    const actions = Array.isArray(hello.actions) ? hello.actions.map(item) : [];
    this.$('.power').hidden = actions.length === 0;
    this.fill(this.$('#power-menu'), actions.map((a) => ({ ...a, label: a.label[0].toUpperCase() + a.label.slice(1) })));
    const layouts = Array.isArray(hello.layouts) && hello.layouts.length ? hello.layouts.map(String) : ['us'];
    const sel = this.$('.layout');
    const keep = sel.value;
    sel.replaceChildren(...layouts.map((l) => new Option(l, l)));
    if (layouts.includes(keep)) sel.value = keep;
  }

  /** Wires the "Resize remote to fit" option; disabled while the console cannot resize. */
  setupResize() {
    const box = this.$('.resize-remote');
    box.checked = this.console.resizeRemote;
    box.onchange = () => { this.console.resizeRemote = box.checked; this.console.focus(); };
    const sync = () => {
      box.disabled = !this.console.canResize;
      this.$('.fit-remote').title = box.disabled ? 'This console cannot resize its display' : 'Resize the remote display to fit this window';
    };
    this.console.addEventListener('connect', sync);
    this.console.addEventListener('caps', sync);
    sync();
  }

  /**
   * @param {HTMLElement} menu
   * @param {{name: string, label: string}[]} items
   */
  fill(menu, items) {
    menu.replaceChildren(...items.map(({ name, label }) => {
      const b = document.createElement('button');
      b.setAttribute('role', 'menuitem');
      b.dataset.name = name;
      b.textContent = label;
      return b;
    }));
  }

  /**
   * @param {Event} e
   * @param {(name: string, label: string) => void} fn
   */
  menuClick(e, fn) {
    const b = /** @type {HTMLElement} */ (e.target).closest('button');
    if (!b) return;
    /** @type {any} */ (b.parentElement).hidePopover();
    fn(b.dataset.name ?? '', b.textContent ?? '');
    this.console.focus();
  }

  /**
   * Puts an opening popover menu under its button.
   * @param {any} e ToggleEvent
   */
  place(e) {
    if (e.newState !== 'open') return;
    const menu = /** @type {HTMLElement} */ (e.target);
    const button = this.bar.querySelector(`[popovertarget="${menu.id}"]`);
    if (!button) return;
    const r = button.getBoundingClientRect();
    menu.style.left = `${Math.max(0, Math.min(r.left, window.innerWidth - 220))}px`;
    menu.style.top = `${r.bottom + 2}px`;
  }

  /**
   * Asks before doing something drastic.
   * @param {string} question
   * @param {() => void} yes
   */
  confirm(question, yes) {
    const d = this.$('.confirm-dlg');
    d.querySelector('p').textContent = question;
    d.addEventListener('close', () => {
      if (d.returnValue === 'ok') yes();
      this.console.focus();
    }, { once: true });
    d.returnValue = '';
    d.showModal();
  }

  /** Refreshes the status line. */
  update() {
    const c = this.console;
    const s = c.stats();
    const parts = [c.state];
    if (c.state === 'connected') {
      if (c.hello?.name) parts.unshift(c.hello.name);
      parts.push(`${s.width}×${s.height}`, (s.auto ? 'auto: ' : '') + (s.codec === 'tiles' ? s.transport : `${s.transport} ${s.codec}`), `${s.fps} fps`, `${s.kbps} kbit/s`, `RTT ${s.rtt} ms`);
      if (s.transport === 'webrtc') parts.push(`lost ${s.packetsLost}`);
    } else if (c.message) {
      parts.push(c.message);
    }
    this.status.textContent = parts.join(' · ');
    this.status.dataset.state = c.state;
  }
}
