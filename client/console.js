// The <kvm-console> element and its JS API: one console connection with
// rendering, input, statistics and auto-reconnect. Pages and panels embed
// it; app.js is the stand-alone console page built from it.

import { Connection, socketURL } from './protocol.js';
import { Screen, layout } from './canvas.js';
import { cursorCSS, CursorOverlay } from './cursor.js';
import { Input } from './input.js';
import { RemoteResize } from './resize.js';
import { RTCViewer } from './webrtc.js';

const STYLE_URL = new URL('style.css', import.meta.url).href;

/** Reconnect backoff: first delay, cap (ms). */
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30000;

/**
 * @typedef {object} Stats
 * @property {number} framesDrawn frames drawn since the element connected first
 * @property {number} bytesReceived bytes received, all connections
 * @property {number} width framebuffer width
 * @property {number} height framebuffer height
 * @property {number} rtt frame round-trip time (ms) as the server measures it
 * @property {number} fps frames drawn in the last second
 * @property {number} kbps kbit received in the last second
 * @property {string} transport "tiles", "wsvideo" or "webrtc" (the server's `transport` message)
 * @property {boolean} auto whether the server switches between tiles and video by activity (`transport=auto`)
 * @property {string} codec "tiles", "vp8" or "h264"
 * @property {number} bitrate video: the server's target bitrate (kbit/s); 0 on tiles
 * @property {number} packetsLost WebRTC: video packets lost so far (0 on other transports)
 */

/**
 * KvmConsole is the `<kvm-console>` custom element: a console's canvas, its
 * keyboard and pointer, and the connection to kvmgate.
 *
 * Attributes: `url` (WebSocket URL; default: "ws" next to the page with the
 * page's query), `scale` ("fit" or "1:1"), `toolbar` (show the toolbar).
 * Properties: `resizeRemote` (resize the remote display to fit the view,
 * where the console can; see resize.js).
 *
 * Events (CustomEvent, detail in parentheses): `connect` (the hello
 * message), `disconnect` ({code, reason, reconnect}), `resize` ({width,
 * height}), `frame` ({frame, width, height}), `clipboard` ({text}), `bell`,
 * `transport` ({transport, codec, auto}), `caps` ({pointer, resize}: the
 * console's pointer kind or resizability changed),
 * `error` ({message, fatal}), `status` ({state, backend, message}).
 *
 * `state` is "idle", "connecting", "connected", "reconnecting" or
 * "disconnected".
 */
export class KvmConsole extends HTMLElement {
  static get observedAttributes() { return ['scale', 'toolbar']; }

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = `<link rel="stylesheet" href="${STYLE_URL}"><div class="bar" part="toolbar" hidden></div>` +
      '<div class="view" tabindex="0" part="view"><canvas width="0" height="0"></canvas>' +
      '<video class="rtc" part="video" muted autoplay playsinline disablepictureinpicture hidden></video><div class="msg" part="message"></div></div>';
    /** @type {HTMLElement} */
    this.bar = /** @type {HTMLElement} */ (root.querySelector('.bar'));
    /** @type {HTMLElement} */
    this.view = /** @type {HTMLElement} */ (root.querySelector('.view'));
    /** @type {HTMLCanvasElement} */
    this.canvas = /** @type {HTMLCanvasElement} */ (root.querySelector('canvas'));
    /** @type {HTMLElement} */
    this.msg = /** @type {HTMLElement} */ (root.querySelector('.msg'));
    /** @type {HTMLVideoElement} WebRTC's picture, laid over the (then transparent) canvas */
    this.video = /** @type {HTMLVideoElement} */ (root.querySelector('video'));
    this.video.muted = true;
    /** @type {RTCViewer|null} */
    this.rtc = null;
    this.screen = new Screen(this.canvas);
    this.screen.onResize = (width, height) => {
      this.relayout();
      this.emit('resize', { width, height });
    };
    /** the console's cursor drawn over the screen while the pointer is relative */
    this.cursor = new CursorOverlay(this.view, this.canvas);
    this.screen.onCursor = (c) => {
      this.cursorRecord = c;
      this.cursor.setShape(c.w, c.h, c.hx, c.hy, c.rgba);
      this.applyCSSCursor();
    };
    /** @type {any} the last cursor record */
    this.cursorRecord = null;
    /** @type {Input|null} */
    this.input = null;
    /** @type {RemoteResize|null} */
    this.remoteResize = null;
    /** the user's "Resize remote to fit" choice */
    this.wantRemoteResize = false;
    /** @type {Connection|null} */
    this.conn = null;
    /** @type {any} the server's hello */
    this.hello = null;
    this.url = '';
    this.state = 'idle';
    this.backend = '';
    this.message = '';
    this.clipboardText = '';
    /** whether the user wants a connection (auto-reconnect applies) */
    this.want = false;
    /** set by a fatal error or an ended session: do not reconnect by itself */
    this.noRetry = false;
    this.attempt = 0;
    this.retryTimer = 0;
    this.framesDrawn = 0;
    this.bytesReceived = 0;
    this.rtt = 0;
    this.fps = 0;
    this.kbps = 0;
    this.transport = 'tiles';
    this.codec = 'tiles';
    this.auto = false;
    this.bitrate = 0;
    this.packetsLost = 0;
    /** video bytes received over WebRTC by the current peer connection */
    this.rtcBytes = 0;
    /** set once this connection asked the server to leave video */
    this.leftVideo = false;
    this.sample = { t: performance.now(), frames: 0, bytes: 0 };
    this.statsTimer = 0;
    this.flashTimer = 0;
    this.dpr = 0;
    /** @type {any} */
    this.toolbar = null;
    this.resizeObserver = new ResizeObserver(() => this.relayout());
  }

  connectedCallback() {
    this.resizeObserver.observe(this.view);
    if (!this.input) this.input = new Input(this.view, this.canvas, (m) => this.send(m));
    if (!this.remoteResize) this.startRemoteResize();
    if (!this.statsTimer) this.statsTimer = window.setInterval(() => this.tick(), 1000);
    if (this.hasAttribute('toolbar')) this.showToolbar(true);
  }

  disconnectedCallback() {
    this.resizeObserver.disconnect();
    this.input?.destroy();
    this.input = null;
    this.remoteResize?.destroy();
    this.remoteResize = null;
    clearInterval(this.statsTimer);
    this.statsTimer = 0;
    this.disconnect();
  }

  /**
   * @param {string} name
   * @param {string|null} _old
   * @param {string|null} value
   */
  attributeChangedCallback(name, _old, value) {
    if (name === 'scale') this.relayout();
    if (name === 'toolbar' && this.isConnected) this.showToolbar(value !== null);
  }

  /** @param {boolean} on */
  showToolbar(on) {
    this.bar.hidden = !on;
    if (on && !this.toolbar) {
      this.toolbar = 'loading';
      import('./toolbar.js').then((m) => { this.toolbar = new m.Toolbar(this, this.bar); })
        .catch((e) => { this.toolbar = null; this.emit('error', { message: `toolbar: ${e.message}`, fatal: false }); });
    }
  }

  /** The scaling mode: "fit" (default) or "1:1". */
  get scale() { return this.getAttribute('scale') === '1:1' ? '1:1' : 'fit'; }
  set scale(v) { this.setAttribute('scale', v === '1:1' ? '1:1' : 'fit'); }

  relayout() {
    this.view.classList.toggle('native', this.scale === '1:1');
    layout(this.canvas, this.scale, this.view.clientWidth, this.view.clientHeight);
    this.placeVideo();
    this.cursor.place();
    // Lay out again when the device pixel ratio changes (zoom, another screen).
    const dpr = window.devicePixelRatio || 1;
    if (dpr !== this.dpr) {
      this.dpr = dpr;
      matchMedia(`(resolution: ${dpr}dppx)`).addEventListener('change', () => this.relayout(), { once: true });
    }
  }

  /**
   * Whether the remote display is resized to fit the view (in device
   * pixels) where the console can resize; off by default.
   */
  get resizeRemote() { return this.wantRemoteResize; }
  set resizeRemote(on) {
    this.wantRemoteResize = !!on;
    this.remoteResize?.setEnabled(this.wantRemoteResize);
  }

  /** Whether the console can resize its display now (hello or caps). */
  get canResize() { return this.hello?.resize === true; }

  startRemoteResize() {
    this.remoteResize = new RemoteResize(this.view, (m) => this.send(m));
    this.remoteResize.setEnabled(this.wantRemoteResize);
    this.remoteResize.setCapable(this.canResize);
  }

  /**
   * The console's capabilities changed: pointer kind, resizability.
   * @param {any} m the `caps` message
   */
  onCaps(m) {
    if (this.hello) {
      this.hello.pointer = m.pointer;
      this.hello.resize = m.resize === true;
    }
    this.input?.setRelative(m.pointer === 'relative');
    this.setRelativeCursor(m.pointer === 'relative');
    this.remoteResize?.setCapable(m.resize === true);
    this.emit('caps', { pointer: String(m.pointer ?? ''), resize: m.resize === true });
  }

  /**
   * With a relative pointer the console's cursor is the overlay, at the
   * backend's position, and the page's pointer (until locked) the default
   * arrow; with an absolute one it is the CSS cursor.
   * @param {boolean} on
   */
  setRelativeCursor(on) {
    this.cursor.setActive(on);
    this.applyCSSCursor();
  }

  applyCSSCursor() {
    const c = this.cursorRecord;
    this.canvas.style.cursor = !c || this.cursor.active ? 'default' : cursorCSS(c.w, c.h, c.hx, c.hy, c.rgba);
  }

  /** Lays the WebRTC <video> exactly over the canvas, which keeps the input and cursor. */
  placeVideo() {
    const v = this.video, c = this.canvas;
    v.style.left = `${c.offsetLeft}px`;
    v.style.top = `${c.offsetTop}px`;
    v.style.width = c.style.width;
    v.style.height = c.style.height;
  }

  /** Ends WebRTC on this console; the canvas shows again. */
  stopRTC() {
    this.rtc?.close();
    this.rtc = null;
    this.rtcBytes = 0;
    this.packetsLost = 0;
    this.video.hidden = true;
    this.view.classList.remove('rtc');
  }

  /**
   * Answers the server's WebRTC offer.
   * @param {Connection} conn
   * @param {any} m
   */
  startRTC(conn, m) {
    this.stopRTC();
    const rtc = new RTCViewer(this.video, (msg) => { if (conn === this.conn) conn.send(msg); }, {
      onFrame: () => {
        if (rtc !== this.rtc) return;
        this.framesDrawn++;
        this.attempt = 0;
        if (rtc.frames === 1) {
          this.video.hidden = false;
          this.view.classList.add('rtc');
          this.placeVideo();
        }
      },
      onFail: (why) => {
        if (rtc !== this.rtc || conn !== this.conn) return;
        this.stopRTC();
        // Fall back to WebSocket video on the same connection.
        this.emit('error', { message: `${why}; using WebSocket video`, fatal: false });
        this.flash(`${why}; using WebSocket video`);
        conn.send({ t: 'transport', transport: 'wsvideo' });
      },
    });
    this.rtc = rtc;
    rtc.offer(m);
  }

  /**
   * @param {string} type
   * @param {any} [detail]
   */
  emit(type, detail = null) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * @param {string} state
   * @param {string} [message]
   */
  setState(state, message = '') {
    this.state = state;
    this.message = message;
    const text = {
      idle: '', connected: '', connecting: 'Connecting…', reconnecting: 'Connection lost.', disconnected: 'Disconnected.',
    }[state] ?? state;
    this.msg.textContent = [text, message].filter(Boolean).join(' ');
    this.msg.hidden = state === 'idle' || (state === 'connected' && !message);
    this.emit('status', { state, backend: this.backend, message });
  }

  /**
   * Connects (or reconnects) to the server. Auto-reconnect stays on until
   * disconnect() or a fatal error.
   * @param {string} [url] WebSocket URL; default: the `url` attribute, else next to the page
   */
  connect(url) {
    this.url = url || this.url || this.getAttribute('url') || socketURL(location, document);
    this.want = true;
    this.noRetry = false;
    this.attempt = 0;
    this.open();
  }

  /** Closes the connection and stops reconnecting. */
  disconnect() {
    this.want = false;
    clearTimeout(this.retryTimer);
    if (this.conn) {
      this.dropConnection(1000, 'disconnect');
      this.emit('disconnect', { code: 1000, reason: 'disconnect', reconnect: false });
    }
    if (this.state !== 'idle') this.setState('disconnected');
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  dropConnection(code, reason) {
    const c = this.conn;
    this.conn = null;
    this.stopRTC();
    this.input?.releaseAll();
    this.screen.reset();
    c?.close(code, reason);
  }

  open() {
    clearTimeout(this.retryTimer);
    if (this.conn) this.dropConnection(1000, 'reconnect');
    this.setState('connecting');
    this.transport = this.codec = 'tiles';
    this.auto = false;
    this.bitrate = 0;
    this.leftVideo = false;
    const conn = new Connection(this.url, {
      onOpen: () => {},
      onBytes: (n) => { this.bytesReceived += n; },
      onMessage: (m) => { if (conn === this.conn) this.onMessage(conn, m); },
      onRecords: (recs) => { if (conn === this.conn) this.onRecords(conn, recs); },
      onClose: (ev) => { if (conn === this.conn) this.onClose(ev); },
    });
    this.conn = conn;
  }

  /**
   * @param {Connection} conn
   * @param {any} m
   */
  onMessage(conn, m) {
    switch (m.t) {
      case 'hello':
        if (m.v !== 1) {
          conn.fail(`unsupported protocol version ${m.v}`);
          return;
        }
        this.hello = m;
        this.input?.setRelative(m.pointer === 'relative');
        this.remoteResize?.setCapable(m.resize === true, true);
        this.cursorRecord = null; // this connection sends shape and position anew
        this.cursor.reset();
        this.setRelativeCursor(m.pointer === 'relative');
        this.renewTicket(m.ticket);
        this.backend = 'connected';
        this.screen.resize(m.width | 0, m.height | 0);
        this.setState('connected');
        this.emit('connect', m);
        break;
      case 'name':
        if (this.hello) this.hello.name = m.name;
        this.emit('status', { state: this.state, backend: this.backend, message: this.message });
        break;
      case 'clipboard':
        this.clipboardText = String(m.text ?? '');
        this.emit('clipboard', { text: this.clipboardText });
        break;
      case 'bell':
        this.emit('bell');
        break;
      case 'cursorpos':
        this.cursor.setPos(Number(m.x) || 0, Number(m.y) || 0);
        break;
      case 'status':
        this.backend = String(m.state ?? '');
        if (m.state === 'ended') this.noRetry = true;
        this.setState(this.state, m.state === 'connected' ? '' : `Console ${m.state}${m.message ? `: ${m.message}` : ''}`);
        break;
      case 'error':
        if (m.fatal) this.noRetry = true;
        this.message = String(m.message ?? '');
        if (!m.fatal) this.flash(this.message);
        this.emit('error', { message: this.message, fatal: !!m.fatal });
        break;
      case 'stats':
        if (!this.rtc) this.rtt = Math.round(Number(m.rtt) || 0);
        this.bitrate = Math.round(Number(m.bitrate) || 0);
        break;
      case 'transport':
        this.transport = String(m.transport ?? 'tiles');
        this.codec = String(m.codec ?? 'tiles');
        this.auto = m.auto === true;
        if (this.transport !== 'webrtc') this.stopRTC();
        this.emit('transport', { transport: this.transport, codec: this.codec, auto: this.auto });
        break;
      case 'ticket':
        this.renewTicket(m.ticket);
        break;
      case 'caps':
        this.onCaps(m);
        break;
      case 'rtc-offer':
        this.startRTC(conn, m);
        break;
      case 'rtc-candidate':
        this.rtc?.candidate(m);
        break;
      default:
        // Unknown server messages are ignored: newer servers may add some.
    }
  }

  /**
   * @param {Connection} conn
   * @param {import('./protocol.js').Record[]} recs
   */
  onRecords(conn, recs) {
    for (const rec of recs) {
      const done = this.screen.push(rec);
      if (!done || rec.type !== 'frame') continue;
      const n = rec.n;
      done.then((ok) => {
        if (!ok || conn !== this.conn) return;
        this.framesDrawn++;
        this.attempt = 0;
        conn.send({ t: 'ack', f: n });
        this.emit('frame', { frame: n, width: this.screen.width, height: this.screen.height });
      }, (e) => {
        if (e?.name !== 'VideoError') {
          conn.fail(`frame ${n}: ${e?.message ?? e}`);
          return;
        }
        // This browser cannot decode the video: continue on tiles. The
        // frame is acknowledged all the same, so that the server's flow
        // control lets the tiles frame through.
        if (conn !== this.conn) return;
        conn.send({ t: 'ack', f: n });
        if (this.leftVideo) return;
        this.leftVideo = true;
        this.emit('error', { message: `video: ${e.message}; using tiles`, fatal: false });
        conn.send({ t: 'transport', transport: 'tiles' });
      });
    }
  }

  /**
   * Puts a fresh ticket from the server into the URL used to reconnect, so
   * that reconnecting works after the page's short-lived ticket expired.
   * @param {unknown} ticket
   */
  renewTicket(ticket) {
    if (typeof ticket !== 'string' || !ticket) return;
    try {
      const u = new URL(this.url);
      if (!u.searchParams.has('ticket')) return;
      u.searchParams.set('ticket', ticket);
      this.url = u.href;
    } catch { /* keep the URL */ }
  }

  /**
   * Shows a message over the console for a few seconds.
   * @param {string} text
   */
  flash(text) {
    if (!text || this.state !== 'connected') return;
    this.msg.textContent = text;
    this.msg.hidden = false;
    clearTimeout(this.flashTimer);
    this.flashTimer = window.setTimeout(() => { if (this.state === 'connected') this.msg.hidden = true; }, 5000);
  }

  /** @param {{code: number, reason: string}} ev */
  onClose(ev) {
    this.conn = null;
    this.stopRTC();
    this.input?.releaseAll();
    this.screen.reset();
    const reconnect = this.want && !this.noRetry;
    this.emit('disconnect', { code: ev.code, reason: ev.reason, reconnect });
    const why = ev.reason || this.message;
    if (!reconnect) {
      this.setState('disconnected', why);
      return;
    }
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt++);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.setState('reconnecting', `Retrying in ${Math.ceil(delay / 1000)} s.${why ? ` (${why})` : ''}`);
    this.retryTimer = window.setTimeout(() => this.open(), delay);
  }

  tick() {
    const rtc = this.rtc;
    if (rtc) {
      // WebRTC media bypasses the socket: count its bytes, and take the
      // round trip and losses from the peer connection.
      rtc.poll().then((r) => {
        if (rtc !== this.rtc) return;
        this.bytesReceived += Math.max(0, r.bytes - this.rtcBytes);
        this.rtcBytes = r.bytes;
        this.packetsLost = r.packetsLost;
        if (r.rtt) this.rtt = Math.round(r.rtt);
      }, () => {});
    }
    const now = performance.now();
    const s = this.sample;
    const dt = (now - s.t) / 1000 || 1;
    this.fps = Math.round((this.framesDrawn - s.frames) / dt);
    this.kbps = Math.round((this.bytesReceived - s.bytes) * 8 / 1000 / dt);
    this.sample = { t: now, frames: this.framesDrawn, bytes: this.bytesReceived };
  }

  /** @returns {Stats} */
  stats() {
    return {
      framesDrawn: this.framesDrawn,
      bytesReceived: this.bytesReceived,
      width: this.screen.width,
      height: this.screen.height,
      rtt: this.rtt,
      fps: this.fps,
      kbps: this.kbps,
      transport: this.transport,
      auto: this.auto,
      codec: this.codec,
      bitrate: this.bitrate,
      packetsLost: this.packetsLost,
    };
  }

  /**
   * Sends a control message; returns whether the console was connected.
   * @param {object} msg
   */
  send(msg) {
    if (!this.conn || this.state !== 'connected') return false;
    // On WebRTC, input goes over its DataChannel; transport changes stay
    // on the WebSocket, which carries the signalling.
    const t = /** @type {any} */ (msg).t;
    if (this.rtc && t !== 'transport' && this.rtc.send(msg)) return true;
    this.conn.send(msg);
    return true;
  }

  /**
   * Sends a named combination ("ctrl-alt-del") or key events.
   * @param {string|Array<{code: string, key?: string, down: boolean}>} keys
   */
  sendKeys(keys) {
    if (typeof keys === 'string') return this.send({ t: 'combo', name: keys });
    let ok = true;
    for (const k of keys) ok = this.send({ t: 'key', code: String(k.code), key: String(k.key ?? ''), down: !!k.down }) && ok;
    return ok;
  }

  /**
   * Types text as keystrokes on the server for a guest keyboard layout.
   * @param {string} text
   * @param {string} [layout] default "us"
   */
  typeText(text, layout = 'us') { return this.send({ t: 'type', text, layout }); }

  /** @param {string} text sets the console's clipboard */
  sendClipboard(text) { return this.send({ t: 'clipboard', text }); }

  /** @param {string} name a power action from hello.actions */
  action(name) { return this.send({ t: 'action', name }); }

  /** Asks the server to resend the whole screen. */
  refresh() { return this.send({ t: 'refresh' }); }

  /** @param {"auto"|"lossless"|"low"} mode */
  setQuality(mode) { return this.send({ t: 'quality', mode }); }

  /**
   * Asks for another transport; the `transport` event reports what the
   * server chose. The URL's `transport=` query picks the first one. "auto"
   * lets the server switch between tiles and WebSocket video by activity.
   * @param {"tiles"|"wsvideo"|"webrtc"|"auto"} transport
   * @param {"vp8"|"h264"} [codec] default: the server's choice
   */
  setTransport(transport, codec) {
    const msg = codec ? { t: 'transport', transport, codec } : { t: 'transport', transport };
    return this.send(msg);
  }

  /** Focuses the console so it gets the keyboard. */
  focus() { this.view.focus({ preventScroll: true }); }

  /** Enters fullscreen, locking the keyboard where the browser can (so Esc, Alt-Tab... reach the console). */
  async enterFullscreen() {
    await this.requestFullscreen();
    await /** @type {any} */ (navigator).keyboard?.lock?.().catch(() => {});
    this.focus();
  }

  /** Leaves fullscreen. */
  async exitFullscreen() {
    /** @type {any} */ (navigator).keyboard?.unlock?.();
    if (document.fullscreenElement) await document.exitFullscreen();
  }

  /** Captures the pointer (relative motion) until Esc. */
  lockPointer() {
    this.focus();
    /** @type {any} */ (this.canvas.requestPointerLock?.())?.catch?.(() => {});
  }
}

if (!customElements.get('kvm-console')) customElements.define('kvm-console', KvmConsole);
