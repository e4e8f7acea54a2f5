// WebRTC viewer (docs/protocol.md, "WebRTC"): answers the server's offer
// that arrives over the console WebSocket, shows the video track in a
// <video> element and carries the browser's messages over the "input"
// DataChannel. It gives up (and the console falls back to WebSocket video)
// when ICE fails or no picture arrives in time.

/** How long to wait for the first picture before giving up (ms). */
export const RTC_FIRST_FRAME_MS = 5000;

/** Whether this browser has WebRTC at all. */
export function rtcSupported() {
  return typeof globalThis.RTCPeerConnection === 'function';
}

/**
 * RTCViewer is one peer connection to the server.
 */
export class RTCViewer {
  /**
   * @param {HTMLVideoElement} video where the track is shown
   * @param {(m: any) => void} signal sends a signalling message over the WebSocket
   * @param {{onFrame: () => void, onFail: (why: string) => void}} h
   */
  constructor(video, signal, h) {
    this.video = video;
    this.signal = signal;
    this.h = h;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {RTCDataChannel|null} */
    this.dc = null;
    this.frames = 0;
    this.closed = false;
    this.timer = 0;
    /** @type {Promise<void>} resolves once the offer is applied */
    this.ready = Promise.resolve();
  }

  /**
   * Applies the server's offer ({sdp, iceServers}) and sends the answer.
   * @param {any} m
   */
  offer(m) {
    if (!rtcSupported()) {
      this.fail('this browser has no RTCPeerConnection');
      return;
    }
    const pc = new RTCPeerConnection({ iceServers: Array.isArray(m.iceServers) ? m.iceServers : [] });
    this.pc = pc;
    pc.onicecandidate = (e) => {
      if (e.candidate && !this.closed) this.signal({ t: 'rtc-candidate', candidate: e.candidate.toJSON() });
    };
    pc.ontrack = (e) => {
      this.video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
      this.video.play().catch(() => {});
    };
    pc.ondatachannel = (e) => { if (e.channel.label === 'input') this.dc = e.channel; };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.fail('WebRTC connection failed');
    };
    this.timer = window.setTimeout(() => {
      if (!this.frames) this.fail(`no WebRTC video within ${RTC_FIRST_FRAME_MS / 1000} s`);
    }, RTC_FIRST_FRAME_MS);
    this.watchFrames();
    this.ready = (async () => {
      await pc.setRemoteDescription({ type: 'offer', sdp: String(m.sdp ?? '') });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      if (!this.closed) this.signal({ t: 'rtc-answer', sdp: pc.localDescription?.sdp ?? answer.sdp });
    })();
    this.ready.catch((e) => this.fail(`WebRTC: ${e instanceof Error ? e.message : e}`));
  }

  /**
   * Adds a server candidate once the offer is applied.
   * @param {any} m
   */
  candidate(m) {
    const pc = this.pc;
    if (!pc || !m.candidate) return;
    this.ready.then(() => pc.addIceCandidate(m.candidate)).catch(() => {});
  }

  /** Counts the pictures the <video> presents. */
  watchFrames() {
    const v = /** @type {any} */ (this.video);
    if (typeof v.requestVideoFrameCallback !== 'function') {
      // Without per-frame callbacks, playback progress counts instead.
      const onTime = () => { if (this.closed) v.removeEventListener('timeupdate', onTime); else this.frame(); };
      v.addEventListener('timeupdate', onTime);
      return;
    }
    const cb = () => {
      if (this.closed) return;
      this.frame();
      v.requestVideoFrameCallback(cb);
    };
    v.requestVideoFrameCallback(cb);
  }

  frame() {
    this.frames++;
    this.h.onFrame();
  }

  /**
   * Reads the connection's statistics: the ICE round trip (ms), video
   * bytes and packets lost so far.
   * @returns {Promise<{rtt: number, bytes: number, packetsLost: number}>}
   */
  async poll() {
    const r = { rtt: 0, bytes: 0, packetsLost: 0 };
    if (!this.pc || this.closed) return r;
    const report = await this.pc.getStats();
    report.forEach((/** @type {any} */ s) => {
      if (s.type === 'candidate-pair' && s.nominated && typeof s.currentRoundTripTime === 'number') r.rtt = s.currentRoundTripTime * 1000;
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        r.bytes += s.bytesReceived || 0;
        r.packetsLost += s.packetsLost || 0;
      }
    });
    return r;
  }

  /**
   * Sends msg over the DataChannel; false when it is not open.
   * @param {any} msg
   */
  send(msg) {
    if (this.closed || !this.dc || this.dc.readyState !== 'open') return false;
    this.dc.send(JSON.stringify(msg));
    return true;
  }

  /** @param {string} why */
  fail(why) {
    if (this.closed) return;
    this.close();
    this.h.onFail(why);
  }

  /** Ends the peer connection and clears the <video>. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.dc = null;
    this.pc?.close();
    this.pc = null;
    this.video.srcObject = null;
  }
}
