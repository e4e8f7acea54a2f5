// The console page (index.html): a full-window <kvm-console> connected to
// the server that served the page; ?scale=1:1 and ?resize=remote preset
// its scaling and remote resize. With ?embed=1 it has no toolbar and
// talks to its parent frame through postMessage:
//
//   parent → frame: {type: "kvmgate", cmd: "combo", name}
//                   {type: "kvmgate", cmd: "keys", keys: [{code, key, down}]}
//                   {type: "kvmgate", cmd: "type", text, layout}
//                   {type: "kvmgate", cmd: "clipboard", text}
//                   {type: "kvmgate", cmd: "connect" | "disconnect" | "refresh" | "focus" | "stats"}
//                   {type: "kvmgate", cmd: "scale", scale: "fit" | "1:1"}
//                   {type: "kvmgate", cmd: "resize-remote", on: true | false}
//   frame → parent: {type: "kvmgate", event, detail} for the console's events
//                   (connect, disconnect, resize, clipboard, bell, error,
//                   status) and {event: "stats", detail: stats()}.

import { KvmConsole } from './console.js';
import { socketURL } from './protocol.js';

const params = new URLSearchParams(location.search);
const embed = params.get('embed') === '1';
const el = /** @type {KvmConsole} */ (document.querySelector('kvm-console'));
if (params.get('scale') === '1:1') el.scale = '1:1';
if (params.get('resize') === 'remote') el.resizeRemote = true;
if (!embed) el.setAttribute('toolbar', '');
el.addEventListener('connect', (/** @type {any} */ e) => {
  document.title = `${e.detail.name || 'console'} – kvmgate`;
});
if (embed) bridge(el);
el.connect(socketURL(location, document));
el.focus();

/**
 * Connects the console to the parent frame.
 * @param {KvmConsole} el
 */
function bridge(el) {
  if (window.parent === window) return;
  let origin = '*';
  try {
    origin = location.ancestorOrigins?.[0] || (document.referrer ? new URL(document.referrer).origin : '*');
  } catch { /* keep '*' */ }
  /** @param {string} event @param {any} detail */
  const post = (event, detail) => window.parent.postMessage({ type: 'kvmgate', event, detail }, origin);
  for (const ev of ['connect', 'disconnect', 'resize', 'clipboard', 'bell', 'error', 'status']) {
    el.addEventListener(ev, (/** @type {any} */ e) => post(ev, e.detail));
  }
  window.addEventListener('message', (e) => {
    const m = e.data;
    if (e.source !== window.parent || (origin !== '*' && e.origin !== origin)) return;
    if (!m || m.type !== 'kvmgate') return;
    switch (m.cmd) {
      case 'combo': el.sendKeys(String(m.name)); break;
      case 'keys': if (Array.isArray(m.keys)) el.sendKeys(m.keys); break;
      case 'type': el.typeText(String(m.text ?? ''), m.layout || 'us'); break;
      case 'clipboard': el.sendClipboard(String(m.text ?? '')); break;
      case 'connect': el.connect(); break;
      case 'disconnect': el.disconnect(); break;
      case 'refresh': el.refresh(); break;
      case 'focus': el.focus(); break;
      case 'scale': el.scale = m.scale; break;
      case 'resize-remote': el.resizeRemote = !!m.on; break;
      case 'stats': post('stats', el.stats()); break;
    }
  });
}
