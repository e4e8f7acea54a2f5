// WebSocket video (docs/protocol.md, "Video"): decodes the stream's
// frames with WebCodecs VideoDecoder. canvas.js calls it in record order
// and draws the pictures it returns; nothing here touches the DOM.

/** VideoError reports a stream this browser cannot decode. */
export class VideoError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'VideoError';
  }
}

/** Whether this browser has WebCodecs video decoding at all. */
export function videoSupported() {
  return typeof globalThis.VideoDecoder === 'function' && typeof globalThis.EncodedVideoChunk === 'function';
}

/**
 * VideoStream is one decoder for the stream a video config record started.
 * decode() resolves with the frame's picture; pictures arrive in decode
 * order (VP8 and constrained-baseline H.264 never reorder).
 */
export class VideoStream {
  constructor() {
    /** @type {VideoDecoder|null} */
    this.decoder = null;
    this.codec = '';
    this.width = 0;
    this.height = 0;
    /** @type {Array<{resolve: (f: VideoFrame) => void, reject: (e: Error) => void}>} */
    this.waiting = [];
  }

  /**
   * Starts a new stream of w×h pictures in codec (a WebCodecs codec
   * string); rejects with VideoError if this browser cannot decode it.
   * @param {string} codec
   * @param {number} w
   * @param {number} h
   */
  async configure(codec, w, h) {
    this.close();
    if (!videoSupported()) throw new VideoError('this browser has no WebCodecs VideoDecoder');
    // H.264 arrives in Annex B form: no description.
    const config = { codec, optimizeForLatency: true };
    let supported = false;
    try {
      ({ supported } = await VideoDecoder.isConfigSupported(config));
    } catch (e) {
      throw new VideoError(`codec ${codec}: ${e instanceof Error ? e.message : e}`);
    }
    if (!supported) throw new VideoError(`this browser cannot decode ${codec}`);
    const dec = new VideoDecoder({
      output: (f) => this.output(dec, f),
      error: (e) => this.fail(dec, new VideoError(`${codec} decoder: ${e.message}`)),
    });
    dec.configure(config);
    this.decoder = dec;
    this.codec = codec;
    this.width = w;
    this.height = h;
  }

  /**
   * Decodes one frame; resolves with its picture, which the caller must
   * close().
   * @param {boolean} key
   * @param {number} ms stream time
   * @param {Uint8Array} data
   * @returns {Promise<VideoFrame>}
   */
  decode(key, ms, data) {
    const dec = this.decoder;
    if (!dec || dec.state !== 'configured') return Promise.reject(new VideoError('video frame without a working decoder'));
    const p = new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    try {
      dec.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp: ms * 1000, data }));
    } catch (e) {
      this.fail(dec, new VideoError(`decode: ${e instanceof Error ? e.message : e}`));
    }
    return p;
  }

  /**
   * @param {VideoDecoder} dec
   * @param {VideoFrame} frame
   */
  output(dec, frame) {
    const w = dec === this.decoder ? this.waiting.shift() : undefined;
    if (w) w.resolve(frame);
    else frame.close();
  }

  /**
   * @param {VideoDecoder} dec
   * @param {Error} err
   */
  fail(dec, err) {
    if (dec !== this.decoder) return;
    for (const w of this.waiting.splice(0)) w.reject(err);
    this.decoder = null;
    if (dec.state !== 'closed') dec.close();
  }

  /** Ends the stream; pending decodes reject. */
  close() {
    if (this.decoder) this.fail(this.decoder, new VideoError('video stream closed'));
    this.codec = '';
  }
}
