/*
 * Web chat front end for the De Webwinkel customer-contact bot.
 *
 * Plain browser JavaScript (no build step). Talks the rasa-webchat style
 * Socket.IO protocol to the same-origin server at the default /socket.io/ path:
 *
 *   client -> server  session_request  {session_id: <stored id> | null, replay: false}
 *   server -> client  session_confirm  "<id>"  or  {session_id: "<id>"}
 *   client -> server  history_request  {session_id}
 *   server -> client  history          {messages: [{sender: "user"|"bot"|"agent", text, sender_name?,
 *                                       quick_replies?, attachment?}]}
 *   client -> server  user_uttered     {message, session_id, customData: {language: "nl"|"en"}, title?}
 *                                      (title: the button's, when message is its payload)
 *   server -> client  bot_uttered      {text?, quick_replies?: [{content_type, title, payload}],
 *                                       attachment?: {type: "image", payload: {src}},
 *                                       metadata?: {sender: "bot"|"agent", sender_name, notice?}}
 *   server -> client  error_message    {text}   (also sent as a bot_uttered with metadata.notice
 *                                               for rasa-webchat; this widget skips that copy)
 *   server -> client  typing_on        {sender_name, seconds?}  someone is really writing now
 *   server -> client  typing_off / turn_done                    the turn is over
 *
 * Texts come with hard line breaks for Markdown widgets ("  \n"); shown here as plain line breaks.
 *
 * Embedded (/?embed=1&parent=<origin>, from /widget/embed.js) the page tells the site's
 * launcher about live messages with postMessage {type: "kb-chat:message", sender} and about its
 * close button {type: "kb-chat:close"}, to the parent's origin only.
 *
 * Server- and user-supplied text is only ever inserted as text nodes
 * (textContent / createTextNode), never as HTML.
 */
(function () {
  'use strict';

  var MAX_LENGTH = 4000;
  var COUNTER_NEAR = 3600;
  var STORAGE_KEY = 'webchat_session_id';
  var TURN_TYPING_MAX_MS = 60000; // a turn that never says it ended (a gateway crash) stops showing dots
  var HISTORY_WAIT_MS = 3000;
  var RETRY_AFTER_REFUSAL_MS = 5000;

  var STRINGS = {
    nl: {
      statusConnecting: 'verbinden…',
      statusConnected: 'verbonden',
      statusReconnecting: 'opnieuw verbinden…',
      placeholder: 'Typ je bericht…',
      send: 'Verstuur',
      inputLabel: 'Je bericht',
      messagesLabel: 'Gesprek met De Webwinkel',
      typing: '{name} is aan het typen…',
      close: 'Chat sluiten',
      quickRepliesLabel: 'Snelle antwoorden',
      emptyTitle: 'Hoi! Waarmee kunnen we je helpen?',
      emptyBody: 'Stel je vraag over je bestelling, de bezorging, retourneren of betalen.',
      hint: 'Enter om te versturen, Shift+Enter voor een nieuwe regel. Deel geen wachtwoorden of betaalgegevens.',
      counterTitle: 'tekens gebruikt van maximaal',
      tooLong: 'Je bericht is te lang (maximaal 4000 tekens).',
      imageAlt: 'Afbeelding',
      genericError: 'Er ging iets mis. Probeer het opnieuw.',
      loadError: 'De chat kon niet worden geladen. Vernieuw de pagina.'
    },
    en: {
      statusConnecting: 'connecting…',
      statusConnected: 'connected',
      statusReconnecting: 'reconnecting…',
      placeholder: 'Type your message…',
      send: 'Send',
      inputLabel: 'Your message',
      messagesLabel: 'Conversation with De Webwinkel',
      typing: '{name} is typing…',
      close: 'Close the chat',
      quickRepliesLabel: 'Quick replies',
      emptyTitle: 'Hi! How can we help you?',
      emptyBody: 'Ask us about your order, delivery, returns or payment.',
      hint: 'Enter to send, Shift+Enter for a new line. Never share passwords or payment details.',
      counterTitle: 'characters used of at most',
      tooLong: 'Your message is too long (at most 4000 characters).',
      imageAlt: 'Image',
      genericError: 'Something went wrong. Please try again.',
      loadError: 'The chat could not be loaded. Please refresh the page.'
    }
  };

  /* ---------- language ---------- */

  function detectLanguage() {
    var param = null;
    try {
      param = new URLSearchParams(window.location.search).get('lang');
    } catch (e) {
      param = null;
    }
    if (param) {
      param = param.toLowerCase();
      if (param.indexOf('en') === 0) return 'en';
      if (param.indexOf('nl') === 0) return 'nl';
    }
    var nav = String(navigator.language || '').toLowerCase();
    return nav.indexOf('en') === 0 ? 'en' : 'nl';
  }

  var lang = detectLanguage();
  var t = STRINGS[lang];
  var BRAND = 'De Webwinkel';

  /* ---------- embedded in a site (/widget/embed.js) ---------- */

  function parentOrigin() {
    var params;
    try {
      params = new URLSearchParams(window.location.search);
    } catch (e) {
      return null;
    }
    if (params.get('embed') !== '1' || window.parent === window) return null;
    try {
      var u = new URL(params.get('parent') || '');
      return (u.protocol === 'https:' || u.protocol === 'http:') ? u.origin : null;
    } catch (e) {
      return null;
    }
  }

  var embedOrigin = parentOrigin();

  function tellParent(message) {
    if (embedOrigin) window.parent.postMessage(message, embedOrigin);
  }

  /* ---------- storage (falls back to memory if localStorage is blocked) ---------- */

  var memoryStore = null;
  var storage = {
    get: function () {
      try {
        var v = window.localStorage.getItem(STORAGE_KEY);
        if (v) return v;
      } catch (e) { /* blocked storage */ }
      return memoryStore;
    },
    set: function (value) {
      memoryStore = value;
      try {
        window.localStorage.setItem(STORAGE_KEY, value);
      } catch (e) { /* blocked storage */ }
    }
  };

  /* ---------- elements ---------- */

  var scrollerEl = document.getElementById('scroller');
  var messagesEl = document.getElementById('messages');
  var emptyEl = document.getElementById('empty-state');
  var typingEl = document.getElementById('typing');
  var typingTextEl = document.getElementById('typing-text');
  var closeEl = document.getElementById('close');
  var formEl = document.getElementById('composer');
  var inputEl = document.getElementById('input');
  var sendEl = document.getElementById('send');
  var statusEl = document.getElementById('status');
  var counterEl = document.getElementById('counter');

  function applyTranslations() {
    document.documentElement.lang = lang;
    var nodes = document.querySelectorAll('[data-i18n]');
    for (var i = 0; i < nodes.length; i++) {
      var key = nodes[i].getAttribute('data-i18n');
      if (t[key]) nodes[i].textContent = t[key];
    }
    nodes = document.querySelectorAll('[data-i18n-placeholder]');
    for (i = 0; i < nodes.length; i++) {
      nodes[i].setAttribute('placeholder', t[nodes[i].getAttribute('data-i18n-placeholder')]);
    }
    nodes = document.querySelectorAll('[data-i18n-aria-label]');
    for (i = 0; i < nodes.length; i++) {
      nodes[i].setAttribute('aria-label', t[nodes[i].getAttribute('data-i18n-aria-label')]);
    }
  }

  /* ---------- state ---------- */

  var socket = null;
  var sessionId = null;
  var everConnected = false;
  var sessionConfirmed = false;
  var historySettled = false; // history received (or waited long enough) for this connection
  var historyTimer = null;
  var typingTimer = null;

  function isReady() {
    return !!(socket && socket.connected && sessionConfirmed && historySettled && sessionId);
  }

  function updateControls() {
    var ready = isReady();
    sendEl.disabled = !ready;
    var buttons = messagesEl.querySelectorAll('.quick-reply');
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = !ready;
  }

  /* ---------- status ---------- */

  function setStatus(state) {
    statusEl.setAttribute('data-state', state);
    var text = state === 'connected' ? t.statusConnected
      : state === 'reconnecting' ? t.statusReconnecting
        : t.statusConnecting;
    if (statusEl.textContent !== text) statusEl.textContent = text;
  }

  /* ---------- scrolling ---------- */

  function isNearBottom() {
    return scrollerEl.scrollHeight - scrollerEl.scrollTop - scrollerEl.clientHeight < 120;
  }

  function scrollToBottom() {
    scrollerEl.scrollTop = scrollerEl.scrollHeight;
  }

  /* ---------- rendering ---------- */

  var URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;

  // Appends text to el as text nodes; http(s) URLs become <a> elements whose
  // text is set with textContent. No HTML parsing of message text anywhere.
  function appendRichText(el, text) {
    var last = 0;
    var match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(text)) !== null) {
      var url = match[0].replace(/[.,;:!?)\]}'"]+$/, '');
      if (url.length < 9) continue; // nothing left beyond "https://"
      if (match.index > last) {
        el.appendChild(document.createTextNode(text.slice(last, match.index)));
      }
      var a = document.createElement('a');
      a.href = url;
      a.textContent = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      el.appendChild(a);
      last = match.index + url.length;
      URL_PATTERN.lastIndex = last;
    }
    if (last < text.length) el.appendChild(document.createTextNode(text.slice(last)));
  }

  function removeQuickReplies() {
    var groups = messagesEl.querySelectorAll('.quick-replies');
    for (var i = 0; i < groups.length; i++) groups[i].parentNode.removeChild(groups[i]);
  }

  function addNode(node) {
    // Quick replies are only active on the most recent bot message.
    removeQuickReplies();
    messagesEl.appendChild(node);
    emptyEl.hidden = true;
    return node;
  }

  var lastSenderName = null;

  // The name above a run of messages from one sender (the bot, or the agent writing now).
  function appendSenderName(name, sender) {
    if (!name || name === lastSenderName) return;
    lastSenderName = name;
    var el = document.createElement('div');
    el.className = 'msg-sender msg-sender-' + (sender === 'agent' ? 'agent' : 'bot');
    el.setAttribute('data-sender', sender === 'agent' ? 'agent' : 'bot');
    el.textContent = name;
    addNode(el);
  }

  function appendMessage(sender, text) {
    if (sender === 'user' || sender === 'system') lastSenderName = null;
    var el = document.createElement('div');
    el.className = 'msg msg-' + sender;
    el.setAttribute('data-sender', sender);
    if (sender === 'system') {
      el.textContent = text;
    } else {
      appendRichText(el, text);
    }
    return addNode(el);
  }

  function appendNotice(text) {
    return appendMessage('system', text);
  }

  function safeImageSrc(src) {
    if (typeof src !== 'string' || !src) return null;
    if (/^data:image\/(png|jpe?g|gif|webp);base64,/i.test(src)) return src;
    try {
      var u = new URL(src, window.location.href);
      if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
    } catch (e) { /* invalid URL */ }
    return null;
  }

  function appendImage(src, alt) {
    var el = document.createElement('div');
    el.className = 'msg msg-bot msg-image';
    el.setAttribute('data-sender', 'bot');
    var img = document.createElement('img');
    img.alt = alt || t.imageAlt;
    img.decoding = 'async';
    img.referrerPolicy = 'no-referrer';
    var stick = isNearBottom();
    img.addEventListener('load', function () {
      if (stick) scrollToBottom();
    });
    img.src = src;
    el.appendChild(img);
    return addNode(el);
  }

  function appendQuickReplies(replies) {
    if (!Array.isArray(replies)) return null;
    var group = document.createElement('div');
    group.className = 'quick-replies';
    group.setAttribute('role', 'group');
    group.setAttribute('aria-label', t.quickRepliesLabel);
    var ready = isReady();
    replies.forEach(function (reply) {
      if (!reply || typeof reply !== 'object') return;
      if (reply.content_type && reply.content_type !== 'text') return;
      var title = reply.title != null ? String(reply.title) : '';
      var payload = reply.payload != null ? String(reply.payload) : '';
      if (!title && !payload) return;
      var btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'quick-reply';
      btn.textContent = title || payload;
      btn.disabled = !ready;
      btn.addEventListener('click', function () {
        sendUserMessage(title || payload, payload || title, title);
      });
      group.appendChild(btn);
    });
    if (!group.firstChild) return null;
    messagesEl.appendChild(group);
    return group;
  }

  function plainText(text) {
    return String(text).replace(/ {2}\n/g, '\n'); // the hard line breaks for Markdown widgets
  }

  // Renders one bot or agent message (from bot_uttered or from history).
  function renderBotMessage(data, withQuickReplies) {
    if (typeof data === 'string') data = { text: data };
    if (!data || typeof data !== 'object') return;
    var meta = data.metadata && typeof data.metadata === 'object' ? data.metadata : {};
    var sender = data.sender === 'agent' || meta.sender === 'agent' ? 'agent' : 'bot';
    var name = data.sender_name != null ? data.sender_name : meta.sender_name;
    appendSenderName(name != null && String(name) !== '' ? String(name) : BRAND, sender);
    if (data.text != null && String(data.text) !== '') appendMessage('bot', plainText(data.text));
    var att = data.attachment;
    if (att && typeof att === 'object' && att.type === 'image' && att.payload) {
      var src = safeImageSrc(att.payload.src);
      if (src) appendImage(src, att.payload.alt != null ? String(att.payload.alt) : '');
    }
    if (withQuickReplies && Array.isArray(data.quick_replies) && data.quick_replies.length) {
      appendQuickReplies(data.quick_replies);
    }
  }

  function renderHistory(data) {
    var list = [];
    if (data && Array.isArray(data.messages)) list = data.messages;
    else if (Array.isArray(data)) list = data;

    messagesEl.setAttribute('aria-busy', 'true');
    messagesEl.classList.add('is-restoring');
    while (messagesEl.firstChild) messagesEl.removeChild(messagesEl.firstChild);
    lastSenderName = null;
    list.forEach(function (m, i) {
      if (!m || typeof m !== 'object') return;
      var isLast = i === list.length - 1;
      if (m.sender === 'user') {
        if (m.text != null && String(m.text) !== '') appendMessage('user', String(m.text));
      } else if (m.sender === 'system') {
        if (m.text != null && String(m.text) !== '') appendNotice(String(m.text));
      } else {
        renderBotMessage(m, isLast);
      }
    });
    emptyEl.hidden = messagesEl.childElementCount > 0;
    messagesEl.removeAttribute('aria-busy');
    setTimeout(function () {
      messagesEl.classList.remove('is-restoring');
    }, 100);
    updateControls();
    scrollToBottom();
  }

  /* ---------- typing indicator ---------- */

  // Only while someone really writes: the bot during a turn (until turn_done / typing_off), an
  // agent while the desk says they type (for `seconds`, said again while they go on).
  var typingSender = null;

  function showTyping(data) {
    var name = data && data.sender_name ? String(data.sender_name) : BRAND;
    typingSender = data && data.sender === 'agent' ? 'agent' : 'bot';
    typingTextEl.textContent = t.typing.replace('{name}', name);
    var stick = isNearBottom();
    typingEl.hidden = false;
    if (stick) scrollToBottom();
    if (typingTimer) clearTimeout(typingTimer);
    var seconds = data && typeof data.seconds === 'number' ? data.seconds : 0;
    typingTimer = setTimeout(hideTyping, seconds > 0 ? seconds * 1000 : TURN_TYPING_MAX_MS);
  }

  function hideTyping() {
    typingSender = null;
    typingEl.hidden = true;
    if (typingTimer) clearTimeout(typingTimer);
    typingTimer = null;
  }

  /* ---------- input ---------- */

  function updateCounter() {
    var len = inputEl.value.length;
    counterEl.textContent = len + '/' + MAX_LENGTH;
    counterEl.title = len + ' ' + t.counterTitle + ' ' + MAX_LENGTH;
    counterEl.classList.toggle('is-near', len >= COUNTER_NEAR && len < MAX_LENGTH);
    counterEl.classList.toggle('is-limit', len >= MAX_LENGTH);
  }

  function autoGrow() {
    inputEl.style.height = 'auto';
    inputEl.style.height = Math.min(inputEl.scrollHeight + 2, 160) + 'px';
  }

  // display: what the user sees in their bubble; message: what is sent; title: the button's.
  function sendUserMessage(display, message, title) {
    if (!isReady()) return false;
    message = String(message).trim();
    display = String(display).trim() || message;
    if (!message) return false;
    if (message.length > MAX_LENGTH) {
      appendNotice(t.tooLong);
      scrollToBottom();
      return false;
    }
    appendMessage('user', display);
    var data = { message: message, session_id: sessionId, customData: { language: lang } };
    if (title && String(title) !== message) data.title = String(title);
    socket.emit('user_uttered', data);
    scrollToBottom();
    return true;
  }

  function submitInput() {
    var text = inputEl.value.trim();
    if (!text) return;
    if (sendUserMessage(text, text)) {
      inputEl.value = '';
      updateCounter();
      autoGrow();
    }
    inputEl.focus();
  }

  formEl.addEventListener('submit', function (e) {
    e.preventDefault();
    submitInput();
  });

  inputEl.addEventListener('keydown', function (e) {
    if (e.key !== 'Enter' || e.shiftKey) return;
    if (e.isComposing || e.keyCode === 229) return; // IME composition in progress
    e.preventDefault();
    submitInput();
  });

  inputEl.addEventListener('input', function () {
    updateCounter();
    autoGrow();
  });

  /* ---------- socket ---------- */

  function onSessionConfirm(data) {
    var id = null;
    if (typeof data === 'string' || typeof data === 'number') id = String(data);
    else if (data && typeof data === 'object' && data.session_id != null) id = String(data.session_id);
    if (!id) return;
    sessionId = id;
    storage.set(id);
    sessionConfirmed = true;
    historySettled = false;
    socket.emit('history_request', { session_id: id });
    // Do not block the user forever if the server never answers with history.
    if (historyTimer) clearTimeout(historyTimer);
    historyTimer = setTimeout(function () {
      historySettled = true;
      updateControls();
    }, HISTORY_WAIT_MS);
    updateControls();
  }

  function onHistory(data) {
    if (historyTimer) clearTimeout(historyTimer);
    historyTimer = null;
    historySettled = true;
    renderHistory(data);
  }

  function onBotUttered(data) {
    var meta = data && typeof data === 'object' && data.metadata && typeof data.metadata === 'object'
      ? data.metadata : {};
    if (meta.notice) return; // the copy of an error_message, for widgets without that event
    var sender = meta.sender === 'agent' ? 'agent' : 'bot';
    var stick = isNearBottom();
    renderBotMessage(data, true);
    if (typingSender === 'agent' && sender === 'agent') hideTyping(); // the agent's message is here
    updateControls();
    if (stick) scrollToBottom();
    if (!meta.replayed) tellParent({ type: 'kb-chat:message', sender: sender });
  }

  function onErrorMessage(data) {
    var text = data && typeof data === 'object' && data.text != null ? String(data.text)
      : typeof data === 'string' ? data : t.genericError;
    appendNotice(plainText(text || t.genericError));
    scrollToBottom();
  }

  function connect() {
    /* global io */
    if (typeof io !== 'function') {
      appendNotice(t.loadError);
      setStatus('reconnecting');
      return;
    }
    socket = io({ transports: ['websocket', 'polling'], tryAllTransports: true });

    socket.on('connect', function () {
      everConnected = true;
      sessionConfirmed = false;
      historySettled = false;
      setStatus('connected');
      // replay: false: this widget asks for the whole history (history_request) instead
      socket.emit('session_request', { session_id: storage.get() || null, replay: false });
      updateControls();
    });

    socket.on('disconnect', function (reason) {
      sessionConfirmed = false;
      historySettled = false;
      setStatus('reconnecting');
      updateControls();
      // The client does not reconnect by itself after a server-side disconnect.
      if (reason === 'io server disconnect') socket.connect();
    });

    socket.on('connect_error', function () {
      setStatus(everConnected ? 'reconnecting' : 'connecting');
      updateControls();
      // socket.active is false when the server refused the connection; retry later.
      if (!socket.active) {
        setTimeout(function () {
          if (!socket.connected) socket.connect();
        }, RETRY_AFTER_REFUSAL_MS);
      }
    });

    socket.io.on('reconnect_attempt', function () {
      setStatus(everConnected ? 'reconnecting' : 'connecting');
    });

    socket.on('session_confirm', onSessionConfirm);
    socket.on('history', onHistory);
    socket.on('bot_uttered', onBotUttered);
    socket.on('error_message', onErrorMessage);
    socket.on('typing_on', showTyping);
    function turnOver() {
      if (typingSender !== 'agent') hideTyping(); // an agent typing meanwhile goes on showing
    }
    socket.on('typing_off', turnOver);
    socket.on('turn_done', turnOver);
  }

  /* ---------- embedded ---------- */

  if (embedOrigin) {
    document.documentElement.classList.add('is-embedded');
    closeEl.hidden = false;
    closeEl.setAttribute('aria-label', t.close);
    closeEl.title = t.close;
    closeEl.addEventListener('click', function () { tellParent({ type: 'kb-chat:close' }); });
    document.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') tellParent({ type: 'kb-chat:close' });
    });
    window.addEventListener('message', function (event) {
      if (event.origin !== embedOrigin || event.source !== window.parent) return;
      var data = event.data;
      if (data && data.type === 'kb-chat:visible' && data.open) {
        scrollToBottom();
        if (!sendEl.disabled || isReady()) inputEl.focus();
      }
    });
  }

  /* ---------- start ---------- */

  applyTranslations();
  setStatus('connecting');
  updateCounter();
  updateControls();
  connect();
  if (window.matchMedia && window.matchMedia('(pointer: fine)').matches) inputEl.focus();
})();
