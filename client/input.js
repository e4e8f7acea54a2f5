// Input: keyboard by physical key, pointer in framebuffer coordinates and
// wheel notches, turned into `key`, `ptr` and `wheel` messages.

const platform = (/** @type {any} */ (navigator).userAgentData?.platform || navigator.platform || '').toLowerCase();
/** Whether the browser runs on macOS. */
export const IS_MAC = platform.startsWith('mac');
/** Whether the browser runs on Windows. */
export const IS_WINDOWS = platform.startsWith('win');

const MODIFIERS = new Set(['ShiftLeft', 'ShiftRight', 'ControlLeft', 'ControlRight', 'AltLeft', 'AltRight',
  'MetaLeft', 'MetaRight', 'CapsLock', 'NumLock', 'ScrollLock', 'Fn', 'OSLeft', 'OSRight']);

/** Pixels of wheel delta per notch, and the smallest delta that is a notch by itself. */
const NOTCH_PX = 100;
const NOTCH_MIN = 50;

/**
 * @typedef {object} InputOptions
 * @property {boolean} [altGrFix] drop the fake ControlLeft Windows sends with AltGr (default: on Windows)
 * @property {boolean} [macMeta] release keys at once while Meta is held, as macOS sends no keyup then (default: on macOS)
 */

/**
 * Input listens on the console's focusable view element and its canvas and
 * sends what the user does as protocol messages.
 */
export class Input {
  /**
   * @param {HTMLElement} view focusable element that receives keyboard events
   * @param {HTMLCanvasElement} canvas
   * @param {(msg: object) => void} send
   * @param {InputOptions} [opts]
   */
  constructor(view, canvas, send, opts = {}) {
    this.view = view;
    this.canvas = canvas;
    this.send = send;
    this.altGrFix = opts.altGrFix ?? IS_WINDOWS;
    this.macMeta = opts.macMeta ?? IS_MAC;
    /** @type {Map<string, string>} code → key of keys we sent down */
    this.held = new Map();
    /** @type {{code: string, key: string, time: number, timer: number}|null} a ControlLeft down held back (AltGr check) */
    this.pendingCtrl = null;
    /** whether the held-back ControlLeft turned out to be AltGr's fake one */
    this.fakeCtrl = false;
    this.buttons = 0;
    this.x = -1;
    this.y = -1;
    this.wheelX = 0;
    this.wheelY = 0;
    /** @type {number|undefined} pointer-lock position, fractional */
    this.lx = undefined;
    /** @type {number|undefined} */
    this.ly = undefined;
    /** whether the console takes relative motion only (see setRelative) */
    this.relative = false;
    /** @type {Array<[EventTarget, string, (e: any) => void, object?]>} */
    this.listeners = [
      [view, 'keydown', (e) => this.onKeyDown(e)],
      [view, 'keyup', (e) => this.onKeyUp(e)],
      [view, 'blur', () => this.releaseAll()],
      [document, 'visibilitychange', () => { if (document.hidden) this.releaseAll(); }],
      [window, 'blur', () => this.releaseAll()],
      [canvas, 'pointerdown', (e) => this.onPointer(e, true)],
      [canvas, 'pointermove', (e) => this.onPointer(e, false)],
      [canvas, 'pointerup', (e) => this.onPointer(e, false)],
      [canvas, 'pointercancel', (e) => this.onPointer(e, false)],
      [canvas, 'wheel', (e) => this.onWheel(e), { passive: false }],
      [canvas, 'contextmenu', (e) => e.preventDefault()],
    ];
    for (const [t, type, fn, o] of this.listeners) t.addEventListener(type, fn, o);
  }

  /** Removes every listener and releases held keys. */
  destroy() {
    this.releaseAll();
    for (const [t, type, fn, o] of this.listeners) t.removeEventListener(type, fn, o);
  }

  /**
   * @param {string} code
   * @param {string} key
   */
  down(code, key) {
    this.held.set(code, key);
    this.send({ t: 'key', code, key, down: true });
  }

  /**
   * @param {string} code
   * @param {string} key
   */
  up(code, key) {
    if (!this.held.has(code)) return;
    this.held.delete(code);
    this.send({ t: 'key', code, key, down: false });
  }

  /** Sends a key up for every key still held, and releases the buttons. */
  releaseAll() {
    this.flushCtrl();
    for (const [code, key] of [...this.held]) this.up(code, key);
    this.fakeCtrl = false;
    if (this.buttons && this.x >= 0) {
      this.buttons = 0;
      this.send({ t: 'ptr', x: this.x, y: this.y, b: 0 });
    }
  }

  /** Sends a held-back ControlLeft down: it was a real Ctrl press. */
  flushCtrl() {
    const pc = this.pendingCtrl;
    if (!pc) return;
    this.pendingCtrl = null;
    clearTimeout(pc.timer);
    this.down(pc.code, pc.key);
  }

  /** @param {KeyboardEvent} e */
  onKeyDown(e) {
    if (e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    e.stopPropagation();
    const { code, key } = e;
    if (this.altGrFix) {
      // Windows reports AltGr as ControlLeft + AltRight with the same
      // timestamp; hold ControlLeft back briefly to tell them apart.
      const pc = this.pendingCtrl;
      if (pc && code === 'AltRight' && e.timeStamp - pc.time < 50) {
        this.pendingCtrl = null;
        clearTimeout(pc.timer);
        this.fakeCtrl = true;
      } else {
        this.flushCtrl();
      }
      if (code === 'ControlLeft') {
        if (this.fakeCtrl) return; // AltGr's fake Ctrl repeating
        if (!e.repeat) {
          this.pendingCtrl = { code, key, time: e.timeStamp, timer: window.setTimeout(() => this.flushCtrl(), 50) };
          return;
        }
      }
    }
    if (this.macMeta && code === 'CapsLock') {
      // macOS sends keydown when Caps Lock turns on and keyup when it turns off.
      this.down(code, key);
      this.up(code, key);
      return;
    }
    this.down(code, key); // an auto-repeat is another down
    if (this.macMeta && !MODIFIERS.has(code) && (this.held.has('MetaLeft') || this.held.has('MetaRight'))) {
      // macOS sends no keyup for keys pressed while Command is held.
      this.up(code, key);
    }
  }

  /** @param {KeyboardEvent} e */
  onKeyUp(e) {
    e.preventDefault();
    e.stopPropagation();
    const { code, key } = e;
    if (this.pendingCtrl && code === 'ControlLeft') this.flushCtrl();
    if (code === 'ControlLeft' && this.fakeCtrl) {
      this.fakeCtrl = false;
      return;
    }
    if (this.macMeta && code === 'CapsLock') {
      this.down(code, key);
      this.up(code, key);
      return;
    }
    this.up(code, key);
    if (this.macMeta && (code === 'MetaLeft' || code === 'MetaRight')) {
      for (const [c, k] of [...this.held]) if (!MODIFIERS.has(c)) this.up(c, k);
    }
  }

  /**
   * Maps viewport coordinates to framebuffer pixels under any CSS scaling.
   * @param {number} clientX
   * @param {number} clientY
   */
  toFramebuffer(clientX, clientY) {
    const r = this.canvas.getBoundingClientRect();
    const w = this.canvas.width, h = this.canvas.height;
    if (!r.width || !r.height || !w || !h) return { x: 0, y: 0 };
    const x = Math.floor((clientX - r.left) * w / r.width);
    const y = Math.floor((clientY - r.top) * h / r.height);
    return { x: Math.min(Math.max(x, 0), w - 1), y: Math.min(Math.max(y, 0), h - 1) };
  }

  /**
   * Tells whether the console takes relative motion only (the hello's
   * `pointer` is "relative": a SPICE VM in server mouse mode, QEMU's VNC
   * without a tablet). Then a click on the canvas captures the pointer
   * with Pointer Lock (until Esc): the page's own pointer, which would
   * drift away from the guest's cursor, is hidden and cannot leave the
   * canvas; motion moves a position kept within the canvas, whose steps
   * the backend sends as relative motion.
   * @param {boolean} on
   */
  setRelative(on) {
    this.relative = on;
    if (!on && document.pointerLockElement === this.canvas) document.exitPointerLock?.();
  }

  /** Asks for Pointer Lock on a press in relative mode. */
  lockOnPress() {
    if (!this.relative || document.pointerLockElement === this.canvas) return;
    /** @type {any} */ (this.canvas.requestPointerLock?.())?.catch?.(() => {});
  }

  /**
   * @param {PointerEvent} e
   * @param {boolean} press
   */
  onPointer(e, press) {
    if (press) {
      this.lockOnPress();
      this.view.focus({ preventScroll: true });
      if (this.canvas.setPointerCapture && e.pointerId !== undefined) {
        try { this.canvas.setPointerCapture(e.pointerId); } catch { /* synthetic pointer */ }
      }
    }
    e.preventDefault();
    let x, y;
    if (document.pointerLockElement === this.canvas && this.x >= 0) {
      const r = this.canvas.getBoundingClientRect();
      const sx = this.canvas.width / (r.width || 1), sy = this.canvas.height / (r.height || 1);
      this.lx = Math.min(Math.max((this.lx ?? this.x) + e.movementX * sx, 0), this.canvas.width - 1);
      this.ly = Math.min(Math.max((this.ly ?? this.y) + e.movementY * sy, 0), this.canvas.height - 1);
      x = Math.floor(this.lx);
      y = Math.floor(this.ly);
    } else {
      ({ x, y } = this.toFramebuffer(e.clientX, e.clientY));
      this.lx = this.ly = undefined;
    }
    // DOM buttons: 1 left, 2 right, 4 middle; protocol: 1 left, 2 middle, 4 right.
    const d = e.buttons;
    const b = (d & 1) | ((d & 4) >> 1) | ((d & 2) << 1);
    if (x === this.x && y === this.y && b === this.buttons) return;
    this.x = x;
    this.y = y;
    this.buttons = b;
    this.send({ t: 'ptr', x, y, b });
  }

  /** @param {WheelEvent} e */
  onWheel(e) {
    e.preventDefault();
    const unit = e.deltaMode === 1 ? NOTCH_PX / 3 : e.deltaMode === 2 ? NOTCH_PX : 1;
    const notches = (acc, delta) => {
      const d = delta * unit;
      if (!d) return [acc, 0];
      if (Math.sign(acc) !== Math.sign(d)) acc = 0;
      acc += d;
      let n = Math.trunc(acc / NOTCH_PX);
      if (n) {
        acc -= n * NOTCH_PX;
      } else if (Math.abs(d) >= NOTCH_MIN) {
        n = Math.sign(d); // a wheel tick smaller than NOTCH_PX, not a touchpad
        acc = 0;
      }
      return [acc, n];
    };
    let dx, dy;
    [this.wheelX, dx] = notches(this.wheelX, e.deltaX);
    [this.wheelY, dy] = notches(this.wheelY, e.deltaY);
    if (!dx && !dy) return;
    const { x, y } = this.toFramebuffer(e.clientX, e.clientY);
    this.send({ t: 'wheel', x, y, dx, dy });
  }
}
