// Cursor: turns a cursor record into a CSS cursor value. The cursor is
// never drawn into the canvas, so the canvas always equals the framebuffer.

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
