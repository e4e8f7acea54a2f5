// Rendering: applies parsed records to the console's <canvas>, frame by
// frame and strictly in record order, even though image and deflate
// payloads finish decoding asynchronously. Also sizes the canvas on screen.

import { VideoStream } from './video.js';

/** @typedef {import('./protocol.js').Record} Record */

/**
 * Screen draws records into a canvas whose backing store is always the
 * framebuffer's size (one canvas pixel per framebuffer pixel); scaling is
 * done by CSS (see layout).
 */
export class Screen {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d', { alpha: false }));
    this.width = canvas.width;
    this.height = canvas.height;
    /** @type {Record[]} records of the frame being received */
    this.pending = [];
    /** @type {Promise<unknown>} the last queued frame's drawing */
    this.tail = Promise.resolve();
    /** bumped by reset; frames of an older generation are dropped */
    this.gen = 0;
    /** @type {(w: number, h: number) => void} */
    this.onResize = () => {};
    /** @type {(c: Extract<Record, {type: 'cursor'}>) => void} */
    this.onCursor = () => {};
    /** the WebSocket video stream (video.js), when the server sends video */
    this.video = new VideoStream();
  }

  /** Drops queued and half-received frames (the connection changed). */
  reset() {
    this.gen++;
    this.pending = [];
    this.tail = Promise.resolve();
    this.video.close();
  }

  /**
   * Queues a record. A frame end queues the frame's drawing and returns a
   * promise that resolves to true once it is on the canvas (false if a
   * reset dropped it) and rejects if a payload could not be decoded.
   * @param {Record} rec
   * @returns {Promise<boolean>|null}
   */
  push(rec) {
    if (rec.type !== 'frame') {
      this.pending.push(rec);
      return null;
    }
    const recs = this.pending;
    this.pending = [];
    const gen = this.gen;
    const done = this.tail.then(() => this.draw(recs, gen));
    this.tail = done.catch(() => {});
    return done;
  }

  /**
   * @param {Record[]} recs
   * @param {number} gen
   */
  async draw(recs, gen) {
    for (const r of recs) {
      if (r.type === 'image') {
        const bmp = await r.bitmap;
        if (gen !== this.gen) { bmp.close(); return false; }
        this.ctx.drawImage(bmp, 0, 0, Math.min(r.w, bmp.width), Math.min(r.h, bmp.height),
          r.x, r.y, Math.min(r.w, bmp.width), Math.min(r.h, bmp.height));
        bmp.close();
      } else if (r.type === 'batch') {
        const recs = await r.recs;
        if (gen !== this.gen || !(await this.draw(recs, gen))) return false;
      } else if (r.type === 'pixels') {
        const data = await r.data;
        if (gen !== this.gen) return false;
        this.putPixels(r.x, r.y, r.w, r.h, data, r.palette, r.bits);
      } else if (r.type === 'vconfig') {
        if (gen !== this.gen) return false;
        await this.video.configure(r.codec, r.w, r.h);
      } else if (r.type === 'vframe') {
        if (gen !== this.gen) return false;
        const pic = await this.video.decode(r.key, r.time, r.data);
        if (gen !== this.gen) { pic.close(); return false; }
        const w = Math.min(this.video.width, pic.displayWidth), h = Math.min(this.video.height, pic.displayHeight);
        this.ctx.drawImage(pic, 0, 0, w, h, 0, 0, w, h);
        pic.close();
      } else if (gen !== this.gen) {
        return false;
      } else {
        this.apply(r);
      }
    }
    return gen === this.gen;
  }

  /**
   * Applies a record that needs no decoding.
   * @param {Record} r
   */
  apply(r) {
    const ctx = this.ctx;
    switch (r.type) {
      case 'resize':
        this.resize(r.w, r.h, true);
        break;
      case 'fill':
        ctx.fillStyle = `rgb(${r.r},${r.g},${r.b})`;
        ctx.fillRect(r.x, r.y, r.w, r.h);
        break;
      case 'copy':
        // Drawing a canvas onto itself copies the source first, so
        // overlapping moves are safe.
        if (r.w > 0 && r.h > 0) ctx.drawImage(this.canvas, r.sx, r.sy, r.w, r.h, r.dx, r.dy, r.w, r.h);
        break;
      case 'cursor':
        this.onCursor(r);
        break;
    }
  }

  /**
   * Makes the canvas w×h and black. With keep set and the size unchanged
   * it keeps the picture: a full frame follows every resize record, and a
   * transport switch (auto) then does not flash black.
   * @param {number} w
   * @param {number} h
   * @param {boolean} [keep]
   */
  resize(w, h, keep = false) {
    const changed = w !== this.width || h !== this.height;
    if (keep && !changed && this.canvas.width === w && this.canvas.height === h) return;
    this.width = w;
    this.height = h;
    this.canvas.width = w;
    this.canvas.height = h;
    this.ctx.imageSmoothingEnabled = false;
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, w, h);
    if (changed) this.onResize(w, h);
  }

  /**
   * Puts inflated RGB (palette null) or indexed pixels at x, y. Indexed
   * pixels have 8 bits, or 1, 2 or 4 packed most significant first with
   * each row padded to whole bytes.
   * @param {number} x @param {number} y @param {number} w @param {number} h
   * @param {Uint8Array} src
   * @param {Uint8Array|null} palette n×3 bytes RGB
   * @param {number} [bits] bits per indexed pixel (default 8)
   */
  putPixels(x, y, w, h, src, palette, bits = 8) {
    if (w === 0 || h === 0) return;
    const img = new ImageData(w, h);
    const dst = new Uint32Array(img.data.buffer); // little-endian: ABGR
    const n = w * h;
    if (palette) {
      const lut = new Uint32Array(256);
      for (let i = 0, j = 0; j + 2 < palette.length; i++, j += 3) {
        lut[i] = 0xff000000 | (palette[j + 2] << 16) | (palette[j + 1] << 8) | palette[j];
      }
      if (bits === 8) {
        for (let i = 0; i < n; i++) dst[i] = lut[src[i]];
      } else {
        const stride = Math.ceil(w * bits / 8), mask = (1 << bits) - 1;
        for (let yy = 0, i = 0; yy < h; yy++) {
          const row = yy * stride;
          for (let xx = 0, bit = 0; xx < w; xx++, i++, bit += bits) {
            dst[i] = lut[(src[row + (bit >> 3)] >> (8 - bits - (bit & 7))) & mask];
          }
        }
      }
    } else {
      for (let i = 0, j = 0; i < n; i++, j += 3) {
        dst[i] = 0xff000000 | (src[j + 2] << 16) | (src[j + 1] << 8) | src[j];
      }
    }
    this.ctx.putImageData(img, x, y);
  }
}

/** Scaling modes: "fit" the box (keeping the aspect ratio) or "1:1", one framebuffer pixel per device pixel. */
export const SCALES = ['fit', '1:1'];

/**
 * Sizes the canvas on screen for a scaling mode inside a box of boxW×boxH
 * CSS pixels, keeping it sharp on HiDPI screens: in "1:1" one framebuffer
 * pixel is one device pixel; in "fit", integer device-pixel scales use
 * nearest-neighbour rendering. Returns the scale in CSS pixels per
 * framebuffer pixel.
 * @param {HTMLCanvasElement} canvas
 * @param {string} mode
 * @param {number} boxW
 * @param {number} boxH
 * @param {number} [dpr]
 */
export function layout(canvas, mode, boxW, boxH, dpr = window.devicePixelRatio || 1) {
  const w = canvas.width, h = canvas.height;
  if (!w || !h) return 1;
  let scale = 1 / dpr;
  if (mode === 'fit' && boxW > 0 && boxH > 0) scale = Math.min(boxW / w, boxH / h);
  const device = scale * dpr;
  const sharp = device >= 1 && Math.abs(device - Math.round(device)) < 1e-3;
  canvas.style.width = `${w * scale}px`;
  canvas.style.height = `${h * scale}px`;
  canvas.style.imageRendering = sharp ? 'pixelated' : 'auto';
  return scale;
}
