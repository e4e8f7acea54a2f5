// Remote resize: while on, asks the server to make the console's display
// the size of the console's view in device pixels, whenever that size
// changes (window resized, toolbar shown, zoom, another screen), so that the
// remote desktop fits the window one to one. The server coalesces requests
// too; this module only sends the settled size, once per change.

/** Quiet time after the last layout change before the size is sent (ms). */
export const RESIZE_DEBOUNCE = 250;

/** The sizes the server accepts (it clamps to them). */
const MIN_W = 320, MIN_H = 200, MAX = 8192;

/**
 * The size, in device pixels, a display should have to fill a box of
 * boxW × boxH CSS pixels one to one, within the server's bounds.
 * @param {number} boxW
 * @param {number} boxH
 * @param {number} dpr
 * @returns {{w: number, h: number}}
 */
export function deviceSize(boxW, boxH, dpr) {
  const clamp = (/** @type {number} */ v, /** @type {number} */ lo) => Math.max(lo, Math.min(MAX, Math.floor(v * dpr)));
  return { w: clamp(boxW, MIN_W), h: clamp(boxH, MIN_H) };
}

/**
 * RemoteResize watches a console's view and sends `resize` messages while
 * enabled and while the server says the console can resize (hello or caps
 * `resize`).
 */
export class RemoteResize {
  /**
   * @param {HTMLElement} view the element whose size the display should take
   * @param {(msg: object) => boolean} send sends a message; false when not connected
   */
  constructor(view, send) {
    this.view = view;
    this.send = send;
    /** the user's choice ("Resize remote to fit") */
    this.enabled = false;
    /** whether the server says the console can resize now */
    this.capable = false;
    /** the size last sent on this connection, "w×h" */
    this.sent = '';
    this.timer = 0;
    this.observer = new ResizeObserver(() => this.schedule());
    this.observer.observe(view);
    /** @type {MediaQueryList|null} */
    this.dprQuery = null;
    this.watchDPR();
  }

  /** Stops watching. */
  destroy() {
    this.observer.disconnect();
    clearTimeout(this.timer);
  }

  /** Re-arms the device-pixel-ratio watch (zoom, another screen). */
  watchDPR() {
    const dpr = window.devicePixelRatio || 1;
    this.dprQuery = matchMedia(`(resolution: ${dpr}dppx)`);
    this.dprQuery.addEventListener('change', () => { this.watchDPR(); this.schedule(); }, { once: true });
  }

  /** @param {boolean} on the user's choice */
  setEnabled(on) {
    this.enabled = on;
    if (on) this.schedule(0);
  }

  /**
   * The console (re)connected or its capabilities changed.
   * @param {boolean} capable the server's `resize` field
   * @param {boolean} [fresh] a new connection: forget what was sent
   */
  setCapable(capable, fresh = false) {
    if (fresh) this.sent = '';
    this.capable = capable;
    if (capable) this.schedule(0);
  }

  /**
   * Sends the view's size after `delay` ms without further changes.
   * @param {number} [delay]
   */
  schedule(delay = RESIZE_DEBOUNCE) {
    clearTimeout(this.timer);
    if (!this.enabled || !this.capable) return;
    this.timer = window.setTimeout(() => this.flush(), delay);
  }

  /** Sends the view's current size unless it was sent already. */
  flush() {
    if (!this.enabled || !this.capable) return;
    const bw = this.view.clientWidth, bh = this.view.clientHeight;
    if (bw <= 0 || bh <= 0) return;
    const { w, h } = deviceSize(bw, bh, window.devicePixelRatio || 1);
    const key = `${w}×${h}`;
    if (key === this.sent) return;
    if (this.send({ t: 'resize', w, h })) this.sent = key;
  }
}
