// Cursor: the console's cursor, never drawn into the canvas (so the canvas
// always equals the framebuffer). With an absolute pointer it is the
// canvas's CSS cursor (cursorCSS). With a relative one the page's pointer
// is locked and hidden, and CursorOverlay draws the shape as an image above
// the screen at the position the backend reports (`cursorpos`).

/** Largest cursor image browsers reliably accept (Chromium: 128×128). */
export const MAX_CURSOR = 128;

/**
 * Returns the CSS cursor for an RGBA (straight alpha) image with hotspot
 * hx, hy: a data-URL PNG painted on a detached canvas, with "default" as
 * the fallback. An empty image (hidden cursor) or one too large gives
 * "default", the page's own pointer.
 * @param {number} w
 * @param {number} h
 * @param {number} hx
 * @param {number} hy
 * @param {Uint8Array} rgba w×h×4 bytes
 * @returns {string}
 */
export function cursorCSS(w, h, hx, hy, rgba) {
  if (!w || !h || w > MAX_CURSOR || h > MAX_CURSOR || rgba.length < w * h * 4) return 'default';
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  const ctx = c.getContext('2d');
  if (!ctx) return 'default';
  const img = new ImageData(w, h);
  img.data.set(rgba.subarray(0, w * h * 4));
  ctx.putImageData(img, 0, 0);
  const x = Math.min(Math.max(hx, 0), w - 1);
  const y = Math.min(Math.max(hy, 0), h - 1);
  return `url(${c.toDataURL('image/png')}) ${x} ${y}, default`;
}

/**
 * CursorOverlay keeps one <img> in the console's view, laid over the screen
 * canvas and scaled with it, showing the cursor shape with its hotspot at
 * the backend's position. It shows only while active (relative pointer),
 * with a shape (not hidden by the backend) and a known position.
 */
export class CursorOverlay {
  /**
   * @param {HTMLElement} view the positioned element that holds the canvas
   * @param {HTMLCanvasElement} canvas the screen
   */
  constructor(view, canvas) {
    this.canvas = canvas;
    this.img = document.createElement('img');
    this.img.className = 'cursor';
    this.img.alt = '';
    this.img.setAttribute('part', 'cursor');
    this.img.hidden = true;
    view.append(this.img);
    this.active = false;
    /** @type {{w: number, h: number, hx: number, hy: number}|null} */
    this.shape = null;
    /** @type {{x: number, y: number}|null} */
    this.pos = null;
  }

  /**
   * Sets the shape from a cursor record (RGBA, straight alpha); w = h = 0
   * is the backend hiding its cursor.
   * @param {number} w
   * @param {number} h
   * @param {number} hx
   * @param {number} hy
   * @param {Uint8Array} rgba
   */
  setShape(w, h, hx, hy, rgba) {
    this.shape = null;
    if (w > 0 && h > 0 && rgba.length >= w * h * 4) {
      const c = document.createElement('canvas');
      c.width = w;
      c.height = h;
      const ctx = c.getContext('2d');
      if (ctx) {
        const img = new ImageData(w, h);
        img.data.set(rgba.subarray(0, w * h * 4));
        ctx.putImageData(img, 0, 0);
        this.img.src = c.toDataURL('image/png');
        this.shape = { w, h, hx, hy };
      }
    }
    this.place();
  }

  /**
   * Moves the cursor's hotspot to framebuffer pixel x, y.
   * @param {number} x
   * @param {number} y
   */
  setPos(x, y) {
    this.pos = { x, y };
    this.place();
  }

  /** @param {boolean} on whether the pointer is relative */
  setActive(on) {
    this.active = on;
    this.place();
  }

  /** Forgets shape and position (a new connection sends them again). */
  reset() {
    this.shape = this.pos = null;
    this.place();
  }

  /** Lays the image out over the canvas; call after the canvas moved or scaled. */
  place() {
    const c = this.canvas, s = this.shape, p = this.pos;
    const show = this.active && !!s && !!p && c.width > 0;
    this.img.hidden = !show;
    if (!show || !s || !p) return;
    const kx = c.clientWidth / c.width, ky = c.clientHeight / c.height;
    const st = this.img.style;
    st.left = `${c.offsetLeft + (p.x - s.hx) * kx}px`;
    st.top = `${c.offsetTop + (p.y - s.hy) * ky}px`;
    st.width = `${s.w * kx}px`;
    st.height = `${s.h * ky}px`;
  }
}
