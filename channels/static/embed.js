/*
 * The De Webwinkel web chat on any site, with one tag:
 *
 *   <script src="https://<gateway>/widget/embed.js" async></script>
 *
 * Adds <kb-chat-widget> to the page: a launcher button (with a badge counting the bot's and
 * agents' messages that arrive while the chat is closed) and a panel over the page holding the
 * chat page of the gateway (/?embed=1) in a frame. Everything lives in the element's own shadow
 * root: the page's CSS does not reach it, and its CSS does not reach the page.
 *
 * The frame and this script talk with postMessage, each checking the other's origin:
 *   frame -> page  {type: "kb-chat:message", sender: "bot"|"agent"}   a live message arrived
 *                  {type: "kb-chat:close"}                             the chat's close button
 *   page -> frame  {type: "kb-chat:visible", open: true|false}
 *
 * The texts (Dutch and English) come from the gateway (bot/texts/messages.py), filled in below.
 * No personal data passes through the page: the conversation stays inside the frame.
 */
(function () {
  'use strict';

  var CONFIG = /*KB_CONFIG*/null;
  if (!CONFIG || window.__kbChatWidget) return; // one launcher, however often the tag is included
  window.__kbChatWidget = true;

  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll('script[src*="/widget/embed.js"]');
    script = all[all.length - 1];
  }
  if (!script) return;
  var gateway = new URL(script.src, window.location.href).origin;

  function pickLanguage() {
    var wanted = String(script.getAttribute('data-lang') || document.documentElement.lang ||
      navigator.language || '').toLowerCase();
    return wanted.indexOf('en') === 0 ? 'en' : 'nl';
  }
  var lang = pickLanguage();
  var t = CONFIG.texts[lang] || CONFIG.texts.nl;

  var CSS = [
    ':host { all: initial; }',
    '.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483646; width: 60px; height: 60px;',
    '  border: 0; border-radius: 50%; background: #4f46e5; color: #fff; cursor: pointer; padding: 0;',
    '  box-shadow: 0 6px 20px rgba(15, 23, 42, .28); display: flex; align-items: center; justify-content: center;',
    '  font: 600 14px/1 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }',
    '.launcher:hover { background: #4338ca; }',
    '.launcher:focus-visible { outline: 3px solid #a5b4fc; outline-offset: 3px; }',
    '.launcher svg { width: 28px; height: 28px; }',
    '.badge { position: absolute; top: -4px; right: -4px; min-width: 22px; height: 22px; padding: 0 6px;',
    '  box-sizing: border-box; border-radius: 11px; background: #dc2626; color: #fff; font-size: 12px;',
    '  line-height: 22px; text-align: center; border: 2px solid #fff; }',
    '.badge[hidden] { display: none; }',
    '.panel { position: fixed; right: 20px; bottom: 92px; z-index: 2147483647; width: 380px;',
    '  height: min(640px, calc(100vh - 112px)); border-radius: 16px; overflow: hidden; background: #fff;',
    '  box-shadow: 0 12px 40px rgba(15, 23, 42, .3); transition: opacity .15s ease, transform .15s ease; }',
    '.panel.closed { opacity: 0; transform: translateY(12px); pointer-events: none; visibility: hidden; }',
    '.panel iframe { width: 100%; height: 100%; border: 0; display: block; }',
    '@media (max-width: 480px) { .panel { right: 0; bottom: 0; width: 100vw; height: 100vh; border-radius: 0; }',
    '  .panel:not(.closed) + .launcher { display: none; } }',
    '@media (prefers-reduced-motion: reduce) { .panel { transition: none; } }'
  ].join('\n');

  var ICON_CHAT = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" ' +
    'd="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-4 4V5a2 2 0 0 1 2-2z"/></svg>';
  var ICON_CLOSE = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" ' +
    'd="M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7l-1.4-1.4L9.2 12 2.9 5.7l1.4-1.4 6.3 6.3 6.3-6.3z"/></svg>';

  var host = document.createElement('kb-chat-widget');
  host.setAttribute('style', 'all: initial !important; position: static !important; display: block !important;');
  var root = host.attachShadow({ mode: 'open' });
  if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function' && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS); // a constructed sheet: allowed by a site's style-src CSP, unlike <style>
    root.adoptedStyleSheets = [sheet];
  } else {
    var style = document.createElement('style');
    style.textContent = CSS;
    root.appendChild(style);
  }

  var panel = document.createElement('div');
  panel.className = 'panel closed';
  panel.setAttribute('data-testid', 'kb-panel');
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', t.widget_frame_title);
  var frame = document.createElement('iframe');
  frame.title = t.widget_frame_title;
  frame.setAttribute('allow', 'clipboard-write');
  frame.src = gateway + '/?embed=1&lang=' + lang + '&parent=' + encodeURIComponent(window.location.origin);
  panel.appendChild(frame);

  var launcher = document.createElement('button');
  launcher.type = 'button';
  launcher.className = 'launcher';
  launcher.setAttribute('data-testid', 'kb-launcher');
  launcher.setAttribute('aria-expanded', 'false');
  var icon = document.createElement('span');
  icon.innerHTML = ICON_CHAT; // our own constant, no data in it
  var badge = document.createElement('span');
  badge.className = 'badge';
  badge.setAttribute('data-testid', 'kb-badge');
  badge.setAttribute('aria-hidden', 'true');
  badge.hidden = true;
  launcher.appendChild(icon);
  launcher.appendChild(badge);

  root.appendChild(panel);
  root.appendChild(launcher);

  var open = false;
  var unread = 0;

  function render() {
    panel.classList.toggle('closed', !open);
    launcher.setAttribute('aria-expanded', open ? 'true' : 'false');
    icon.innerHTML = open ? ICON_CLOSE : ICON_CHAT;
    badge.hidden = open || unread === 0;
    badge.textContent = unread > 99 ? '99+' : String(unread);
    var label = open ? t.widget_close : t.widget_open;
    if (!open && unread > 0) {
      label += ' (' + (unread === 1 ? t.widget_unread_one : t.widget_unread_many.replace('{count}', unread)) + ')';
    }
    launcher.setAttribute('aria-label', label);
    launcher.title = open ? t.widget_close : t.widget_open;
  }

  function tellFrame() {
    if (frame.contentWindow) frame.contentWindow.postMessage({ type: 'kb-chat:visible', open: open }, gateway);
  }

  function setOpen(value) {
    open = value;
    if (open) unread = 0;
    render();
    tellFrame();
    if (open) frame.focus();
  }

  launcher.addEventListener('click', function () { setOpen(!open); });
  frame.addEventListener('load', tellFrame);

  window.addEventListener('message', function (event) {
    if (event.origin !== gateway || event.source !== frame.contentWindow) return;
    var data = event.data;
    if (!data || typeof data !== 'object') return;
    if (data.type === 'kb-chat:message') {
      if (!open) {
        unread += 1;
        render();
      }
    } else if (data.type === 'kb-chat:close') {
      setOpen(false);
      launcher.focus();
    }
  });

  document.addEventListener('keydown', function (event) {
    if (open && event.key === 'Escape') setOpen(false);
  });

  function mount() {
    (document.body || document.documentElement).appendChild(host);
    render();
  }
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);
})();
