// The kvmgate.v1 wire protocol (docs/protocol.md): the WebSocket, binary
// record parsing, the connection's raw-deflate stream and JSON control
// messages. Nothing here touches the DOM; canvas.js draws what this parses.

/** WebSocket subprotocol of wire protocol v1. */
export const SUBPROTOCOL = 'kvmgate.v1';

/** Binary record types. */
export const Rec = Object.freeze({
  RESIZE: 0x10, FILL: 0x11, PNG: 0x12, JPEG: 0x13,
  DEFLATE: 0x14, COPY: 0x15, CURSOR: 0x16, FRAME_END: 0x17, BATCH: 0x18,
  FRAME_END_SHORT: 0x19,
  VIDEO_CONFIG: 0x20, VIDEO_FRAME: 0x21,
});

/** Close code the client uses when the server breaks the protocol. */
export const CLOSE_PROTOCOL = 4002;

/** ProtocolError reports bytes or messages that break docs/protocol.md. */
export class ProtocolError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * Inflater is the connection's single raw-deflate stream. The server
 * sync-flushes at the end of the last deflate record of each binary
 * message, not after every record: parseRecords writes the compressed
 * bytes of all of a message's deflate records before any read can run (the
 * reads are queued as promises), so every record's inflated bytes become
 * available; reads are queued so that records take their bytes strictly in
 * record order.
 */
export class Inflater {
  constructor() {
    const ds = new DecompressionStream('deflate-raw');
    /** @type {WritableStreamDefaultWriter<BufferSource>} */
    this.writer = ds.writable.getWriter();
    /** @type {ReadableStreamDefaultReader<Uint8Array>} */
    this.reader = ds.readable.getReader();
    this.writer.closed.catch(() => {});
    this.reader.closed.catch(() => {});
    /** @type {Uint8Array} inflated bytes not yet claimed by a record */
    this.rest = new Uint8Array(0);
    /** @type {Promise<unknown>} the last queued read */
    this.tail = Promise.resolve();
  }

  /**
   * Feeds one record's compressed bytes and returns its n inflated bytes.
   * @param {Uint8Array} data
   * @param {number} n
   * @returns {Promise<Uint8Array>}
   */
  inflate(data, n) {
    this.writer.write(data).catch(() => {});
    const p = this.tail.then(() => this.read(n));
    this.tail = p.catch(() => {});
    p.catch(() => {}); // the drawer reports the error; never unhandled
    return p;
  }

  /** @param {number} n */
  async read(n) {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      if (this.rest.length === 0) {
        const { value, done } = await this.reader.read();
        if (done) throw new ProtocolError('deflate stream ended early');
        this.rest = value;
      }
      const k = Math.min(n - off, this.rest.length);
      out.set(this.rest.subarray(0, k), off);
      this.rest = this.rest.subarray(k);
      off += k;
    }
    return out;
  }

  /** Abandons the stream (the connection is gone). */
  close() {
    this.writer.abort().catch(() => {});
    this.reader.cancel().catch(() => {});
  }
}

/**
 * @typedef {{type: 'resize', w: number, h: number}
 *  | {type: 'fill', x: number, y: number, w: number, h: number, r: number, g: number, b: number}
 *  | {type: 'image', x: number, y: number, w: number, h: number, bitmap: Promise<ImageBitmap>}
 *  | {type: 'pixels', x: number, y: number, w: number, h: number, palette: Uint8Array|null, bits: number, data: Promise<Uint8Array>}
 *  | {type: 'copy', sx: number, sy: number, w: number, h: number, dx: number, dy: number}
 *  | {type: 'cursor', w: number, h: number, hx: number, hy: number, rgba: Uint8Array}
 *  | {type: 'frame', n: number, time: number}
 *  | {type: 'batch', recs: Promise<Record[]>}
 *  | {type: 'vconfig', w: number, h: number, codec: string}
 *  | {type: 'vframe', key: boolean, time: number, data: Uint8Array}} Record
 */

/**
 * Turns column-major packed indices (format 3: each column top to bottom,
 * padded to a byte) into row-major ones (format 2: each row left to right,
 * padded to a byte).
 * @param {Uint8Array} src
 * @param {number} w
 * @param {number} h
 * @param {number} bits 1, 2 or 4
 * @returns {Uint8Array}
 */
export function columnsToRows(src, w, h, bits) {
  const cs = Math.ceil(h * bits / 8), rs = Math.ceil(w * bits / 8);
  const out = new Uint8Array(rs * h);
  const mask = (1 << bits) - 1;
  for (let x = 0; x < w; x++) {
    const xb = x * bits, ob = xb >> 3, os = 8 - bits - (xb & 7);
    for (let y = 0, yb = 0; y < h; y++, yb += bits) {
      const v = (src[x * cs + (yb >> 3)] >> (8 - bits - (yb & 7))) & mask;
      out[y * rs + ob] |= v << os;
    }
  }
  return out;
}

/**
 * Parses one binary message into records. Image and deflate payloads start
 * decoding at once; their results are promises the drawer awaits in order.
 * A batch record becomes a 'batch' whose records (fills, copies, pixels)
 * are parsed once its bytes are inflated; the drawer awaits them in turn.
 * @param {ArrayBuffer} buf
 * @param {Inflater} inflater
 * @param {boolean} [inBatch] buf holds a batch's inflated records: deflate
 *   records carry their (palette and) pixel bytes inline, uncompressed
 * @returns {Record[]}
 */
export function parseRecords(buf, inflater, inBatch = false) {
  const v = new DataView(buf);
  const bytes = new Uint8Array(buf);
  const out = [];
  let p = 0;
  const need = (n, what) => {
    if (p + n > buf.byteLength) throw new ProtocolError(`truncated ${what} record at byte ${p}`);
  };
  const u16 = () => { const x = v.getUint16(p, true); p += 2; return x; };
  const u32 = () => { const x = v.getUint32(p, true); p += 4; return x; };
  const uvarint = () => {
    let x = 0;
    for (let shift = 0; shift < 42; shift += 7) {
      need(1, 'varint');
      const b = bytes[p++];
      x += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return x;
    }
    throw new ProtocolError(`bad varint at byte ${p}`);
  };
  while (p < buf.byteLength) {
    const type = bytes[p++];
    if (inBatch && type !== Rec.FILL && type !== Rec.COPY && type !== Rec.DEFLATE) {
      throw new ProtocolError(`record type ${type} in a batch`);
    }
    switch (type) {
      case Rec.RESIZE:
        need(4, 'resize');
        out.push({ type: 'resize', w: u16(), h: u16() });
        break;
      case Rec.FILL: {
        need(11, 'fill');
        const x = u16(), y = u16(), w = u16(), h = u16();
        out.push({ type: 'fill', x, y, w, h, r: bytes[p], g: bytes[p + 1], b: bytes[p + 2] });
        p += 3;
        break;
      }
      case Rec.PNG:
      case Rec.JPEG: {
        need(12, 'image');
        const x = u16(), y = u16(), w = u16(), h = u16(), n = u32();
        need(n, 'image');
        const blob = new Blob([bytes.subarray(p, p + n)], { type: type === Rec.PNG ? 'image/png' : 'image/jpeg' });
        p += n;
        const bitmap = createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
        bitmap.catch(() => {});
        out.push({ type: 'image', x, y, w, h, bitmap });
        break;
      }
      case Rec.DEFLATE: {
        need(9, 'deflate');
        const x = u16(), y = u16(), w = u16(), h = u16();
        const format = bytes[p++];
        let palette = null;
        let bits = 8; // bits per pixel of indexed data
        if (format === 1 || format === 2 || format === 3) {
          need(1, 'deflate');
          const n = bytes[p++] + 1;
          if (format !== 1) {
            if (n > 16) throw new ProtocolError(`packed deflate record with ${n} colours`);
            bits = n <= 2 ? 1 : n <= 4 ? 2 : 4;
          }
          // The palette leads the record's inflated bytes; it is filled
          // in before the record's data promise resolves.
          palette = new Uint8Array(n * 3);
        } else if (format !== 0) {
          throw new ProtocolError(`deflate record with unknown format ${format}`);
        }
        const np = palette ? palette.length : 0;
        const size = !palette ? w * h * 3
          : format === 3 ? np + w * Math.ceil(h * bits / 8) : np + h * Math.ceil(w * bits / 8);
        // Column-major indices (format 3) become rows, as format 2 has them.
        const rows = format === 3 ? (b) => columnsToRows(b, w, h, bits) : (b) => b;
        if (inBatch) { // the bytes follow, already inflated
          need(size, 'deflate');
          const b = bytes.subarray(p, p + size);
          if (palette) palette.set(b.subarray(0, np));
          p += size;
          out.push({ type: 'pixels', x, y, w, h, palette, bits, data: Promise.resolve(rows(b.subarray(np))) });
          break;
        }
        need(4, 'deflate');
        const n = u32();
        need(n, 'deflate');
        let data = inflater.inflate(bytes.slice(p, p + n), size);
        if (palette) {
          const pal = palette;
          data = data.then((b) => { pal.set(b.subarray(0, np)); return rows(b.subarray(np)); });
          data.catch(() => {});
        }
        p += n;
        out.push({ type: 'pixels', x, y, w, h, palette, bits, data });
        break;
      }
      case Rec.COPY:
        need(12, 'copy');
        out.push({ type: 'copy', sx: u16(), sy: u16(), w: u16(), h: u16(), dx: u16(), dy: u16() });
        break;
      case Rec.CURSOR: {
        need(8, 'cursor');
        const w = u16(), h = u16(), hx = u16(), hy = u16();
        need(w * h * 4, 'cursor');
        out.push({ type: 'cursor', w, h, hx, hy, rgba: bytes.slice(p, p + w * h * 4) });
        p += w * h * 4;
        break;
      }
      case Rec.BATCH: {
        const size = uvarint(), n = uvarint();
        need(n, 'batch');
        // The server leaves out the sync flush's last four bytes.
        const z = new Uint8Array(n + 4);
        z.set(bytes.subarray(p, p + n));
        z.set([0, 0, 0xff, 0xff], n);
        const recs = inflater.inflate(z, size)
          .then((b) => parseRecords(b.buffer, inflater, true));
        recs.catch(() => {}); // the drawer reports the error
        p += n;
        out.push({ type: 'batch', recs });
        break;
      }
      case Rec.FRAME_END:
        need(8, 'frame end');
        out.push({ type: 'frame', n: u32(), time: u32() });
        break;
      case Rec.FRAME_END_SHORT:
        out.push({ type: 'frame', n: uvarint(), time: 0 });
        break;
      case Rec.VIDEO_CONFIG: {
        need(5, 'video config');
        const w = u16(), h = u16(), n = bytes[p++];
        need(n, 'video config');
        const codec = String.fromCharCode(...bytes.subarray(p, p + n));
        p += n;
        out.push({ type: 'vconfig', w, h, codec });
        break;
      }
      case Rec.VIDEO_FRAME: {
        need(9, 'video frame');
        const key = (bytes[p++] & 1) === 1, time = u32(), n = u32();
        need(n, 'video frame');
        out.push({ type: 'vframe', key, time, data: bytes.slice(p, p + n) });
        p += n;
        break;
      }
      default:
        throw new ProtocolError(`unknown record type 0x${type.toString(16)} at byte ${p - 1}`);
    }
  }
  return out;
}

/**
 * Returns the WebSocket URL for the console page at loc: "ws" next to the
 * page, with the page's own query string, plus the ticket from the first
 * non-empty <meta name="kvmgate-ticket"> when the query has none.
 * @param {Location|URL} loc
 * @param {Document} [doc]
 */
export function socketURL(loc, doc) {
  const u = new URL('ws', loc.href);
  u.protocol = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = loc.search;
  u.hash = '';
  const metas = doc ? [...doc.querySelectorAll('meta[name="kvmgate-ticket"]')] : [];
  const ticket = metas.map((m) => m.getAttribute('content')).find(Boolean);
  if (ticket && !u.searchParams.has('ticket')) u.searchParams.set('ticket', ticket);
  return u.href;
}

/**
 * @typedef {object} ConnectionHandlers
 * @property {() => void} onOpen the socket is open
 * @property {(msg: any) => void} onMessage a JSON control message
 * @property {(recs: Record[]) => void} onRecords the records of a binary message
 * @property {(bytes: number) => void} onBytes a message of this many bytes arrived
 * @property {(ev: {code: number, reason: string}) => void} onClose the socket closed (once)
 */

/**
 * Connection is one WebSocket to the server. It parses what arrives, in
 * order, and hands it to its handlers; it never draws.
 */
export class Connection {
  /**
   * @param {string} url
   * @param {ConnectionHandlers} h
   */
  constructor(url, h) {
    this.h = h;
    this.inflater = new Inflater();
    this.closed = false;
    this.ws = new WebSocket(url, SUBPROTOCOL);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => h.onOpen();
    this.ws.onmessage = (ev) => this.receive(ev.data);
    this.ws.onclose = (ev) => this.finish(ev.code, ev.reason);
    this.ws.onerror = () => {}; // onclose follows with the code
  }

  /** @param {ArrayBuffer|string} data */
  receive(data) {
    if (this.closed) return;
    try {
      if (typeof data === 'string') {
        this.h.onBytes(data.length);
        let msg;
        try {
          msg = JSON.parse(data);
        } catch {
          throw new ProtocolError('malformed JSON message');
        }
        if (!msg || typeof msg.t !== 'string') throw new ProtocolError('JSON message without "t"');
        this.h.onMessage(msg);
      } else {
        this.h.onBytes(data.byteLength);
        this.h.onRecords(parseRecords(data, this.inflater));
      }
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * Sends a JSON control message; dropped when the socket is not open.
   * @param {object} msg
   */
  send(msg) {
    if (!this.closed && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /**
   * Closes the connection because the server broke the protocol.
   * @param {string} why
   */
  fail(why) {
    this.close(CLOSE_PROTOCOL, `protocol error: ${why}`.slice(0, 120));
  }

  /**
   * Closes the socket; onClose runs at once with this code and reason.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    if (this.closed) return;
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.close();
    }
    this.finish(code, reason);
  }

  /** @param {number} code @param {string} reason */
  finish(code, reason) {
    if (this.closed) return;
    this.closed = true;
    this.inflater.close();
    this.h.onClose({ code, reason });
  }
}
