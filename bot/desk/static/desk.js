/* Agent desk: queue, conversation, customer record and decisions.
 *
 * Plain ES2020, no framework, no external resources. Works under a strict CSP
 * (default-src 'self'): no inline handlers, no inline styles, no eval.
 * SECURITY: every value from the server is put on the page with textContent or as an
 * attribute value, never with innerHTML.
 */
"use strict";

(() => {
  // ------------------------------------------------------------------ texts (nl, en)
  // The page's own texts. Labels for codes (roles, order/invoice/conversation states, decisions,
  // reasons) come from the server (GET /desk/api/labels, bot/desk/texts.py LABELS), and money
  // comes formatted by the server (bot.texts.fmt.money), in the language asked for.

  const I18N = {
    nl: {
      title: "Klantcontact desk", language: "Taal", logout: "Uitloggen",
      queue: "Wachtrij", queue_empty: "Niemand wacht.", mine: "Mijn gesprekken",
      mine_empty: "Je hebt geen open gesprekken.", pick_conversation: "Kies een gesprek uit de wachtrij.",
      claim: "Oppakken", open: "Bekijken", priority: "prioriteit {n}", waiting_for: "wacht {t}",
      cannot_claim: "Niet voor jou", needs_role: "Alleen voor {role} of hoger",
      needs_skill: "Vraagt vaardigheid {skill}", needs_language: "Klant spreekt {lang}",
      claimed_by: "Opgepakt door {name}",
      id_anonymous: "Anoniem (niet geïdentificeerd)", id_claimed: "Zegt wie hij/zij is, niet bevestigd",
      id_verified: "Bevestigd", id_by_code: "met een code", id_by_login: "via de inlog op de site",
      id_by_contact: "via het eigen Telegram-nummer", id_by_link_code: "via een eenmalige link",
      id_by_whatsapp: "via het WhatsApp-nummer", id_by_sms: "via het telefoonnummer", id_by_telegram: "via Telegram",
      request_title: "Voorgesteld besluit:", note_from_colleague: "Notitie:",
      reply_label: "Antwoord", reply_placeholder: "Typ je antwoord aan de klant…",
      reply_hint: "Enter verstuurt, Shift+Enter is een nieuwe regel.", send: "Versturen",
      handback: "Terug naar de bot", handback_resolved: "Opgelost, terug naar de bot", transfer: "Doorverbinden", close: "Afsluiten",
      transfer_role: "Naar rol", transfer_queue: "Naar wachtrij", transfer_note: "Notitie voor de collega",
      transfer_submit: "Doorverbinden", keep: "— ongewijzigd —",
      customer: "Klant", no_record: "Geen klantgegevens.", unknown_customer: "Klant niet geïdentificeerd.",
      orders: "Bestellingen", invoices: "Facturen", loyalty: "Spaarprogramma", tickets: "Open tickets",
      decisions: "Eerdere besluiten", feedback: "Eerdere feedback", none: "Geen.",
      churn: "Vertrekrisico", churn_none: "geen signalen",
      f_name: "Naam", f_number: "Klantnummer", f_segment: "Segment", f_language: "Taal",
      f_channel: "Voorkeurskanaal", f_phone: "Telefoon", f_email: "E-mail",
      decide: "Besluiten", decision: "Besluit", amount: "Bedrag (€)", instalments: "Termijnen",
      percent: "Percentage", order_number: "Bestelnummer", note: "Notitie", decide_submit: "Toekennen",
      escalate_to: "Escaleren naar {role}", decided: "Toegekend. De klant kreeg te horen:",
      decided_on: "Toegekend. De klant kreeg via {channel} te horen:",
      decided_untold: "Toegekend, maar het bericht aan de klant is niet verstuurd: laat het de klant zelf weten.",
      decided_plain: "Toegekend.",
      delivery_failed: "Niet afgeleverd", delivery_pending: "Nog niet afgeleverd (wordt opnieuw geprobeerd)",
      delivery_reason: "reden: {reason}",
      live_on: "Live verbonden", live_off: "Verbinding weg, opnieuw verbinden…", live_connecting: "Verbinden…",
      online: "{n} online",
      claimed: "Gesprek opgepakt.", sent: "Verstuurd via {channel}.", handed_back: "Het gesprek is terug bij de bot.",
      transferred: "Doorverbonden.", closed: "Gesprek afgesloten.",
      escalated: "Geëscaleerd naar {role}; het gesprek staat weer in de wachtrij.",
      err_network: "Geen verbinding met de server.", err_http: "Fout {status} van de server.",
      err_empty: "Typ eerst een bericht.", err_amount: "Vul een geldig bedrag in.",
      err_instalments: "Vul een geldig aantal termijnen in.", err_percent: "Vul een geldig percentage in.",
      err_transfer: "Kies een rol of een wachtrij.",
      media: "bijlage", buttons: "knoppen", points: "{n} punten", promised: "beloofd {d}",
      open_amount: "open {a}", due: "vervalt {d}", lines: "{n} regels",
      refusal_fallback: "Dit valt buiten jouw mandaat.",
      erase: "Klantgegevens wissen (AVG)",
      erase_hint: "Op verzoek van de klant (AVG): verwijdert alle gegevens van deze klant overal; facturen blijven anoniem bewaard.",
      erase_prompt: "Alle gegevens van {name} ({number}) worden overal gewist. Dit kan niet ongedaan worden gemaakt. Typ het klantnummer {number} ter bevestiging:",
      erase_cancelled: "Niet gewist: het klantnummer klopte niet.",
      erased: "Klantgegevens gewist (wis-id {id}).",
      erased_partly: "Database gewist (wis-id {id}), maar Redis niet: vraag een beheerder het wissen af te maken.",
      callbacks: "Terugbellen", callbacks_empty: "Geen terugbelverzoeken.",
      cb_due: "nu", cb_later: "later", cb_overdue: "te laat", cb_done: "Gebeld", cb_not_reached: "Niet bereikt",
      cb_move: "Verzetten", cb_move_to: "Verzetten naar…", cb_attempts: "poging {n}",
      cb_marked: "Terugbelverzoek bijgewerkt.",
      promise: "Tijd beloven", promise_when: "Ik kom bij de klant terug:", promise_1h: "binnen een uur",
      promise_today: "vandaag", promise_tomorrow: "morgenochtend", promised: "Beloofd en aan de klant verteld: {text}",
      risk_title: "Beloftes die dreigen te verlopen", risk_at_risk: "dreigt te verlopen", risk_broken: "verlopen",
      risk_line: "{kind} · {state} · {deadline}",
      follow_ups: "Feedback opvolgen", fu_before: "beantwoorden voor {d}", fu_transcript: "Gesprek",
      fu_note: "Wat heb je gedaan? (intern)", fu_message: "Bericht aan de klant", fu_done: "Afronden",
      fu_closed: "Opvolging afgerond; de klant is geïnformeerd.", fu_bot: "bot", fu_empty: "Vul beide velden in.",
      reach_out: "Klanten benaderen", reach_done: "Gedaan", reach_note: "Wat heb je gedaan?", reach_closed: "Taak afgesloten.",
      reports: "Rapportage", reports_back: "Terug naar de gesprekken",
      r_from: "Van", r_to: "Tot en met", r_channel: "Kanaal", r_queue: "Wachtrij", r_agent: "Medewerker",
      r_served_by: "Bot of mens", r_topic: "Onderwerp", r_all: "Alle", r_none: "—",
      r_period: "{from} t/m {to} · {n} antwoorden op {sent} verstuurde enquêtes",
      r_nps: "NPS", r_nps_sub: "{p} promotors · {pa} passief · {d} criticasters",
      r_ces: "CES (gemak, 1–7)", r_ces_sub: "{n} antwoorden · {easy} makkelijk (5–7)",
      r_csat: "CSAT (1–5)", r_csat_sub: "{n} antwoorden · {sat} tevreden (4–5)",
      r_rate: "Respons", r_rate_sub: "{a} van {s} enquêtes beantwoord",
      r_answers: "Antwoorden", r_answers_sub: "{anon} anoniem · {c} met opmerking",
      r_trend: "Per week", r_ces_distribution: "CES-verdeling",
      r_trend_label: "Grafiek: NPS, respons en gemiddelde CES per week",
      r_ces_label: "Grafiek: aantal antwoorden per CES-score",
      r_series_nps: "NPS", r_series_rate: "Respons (%)", r_series_ces: "CES gemiddeld", r_series_answers: "Antwoorden",
      r_t_weeks: "Per week", r_t_channel: "Per kanaal", r_t_queue: "Per wachtrij", r_t_agent: "Per medewerker",
      r_t_served_by: "Bot of mens", r_t_topic: "Per onderwerp", r_t_comments: "Opmerkingen",
      r_t_promises: "Beloftes en wachttijden per wachtrij", r_t_churn: "Vertrekrisico: wie houden we in de gaten",
      c_week: "Week", c_answers: "Antw.", c_promoters: "Prom.", c_passives: "Pass.", c_detractors: "Crit.",
      c_ces: "CES", c_csat: "CSAT", c_sent: "Verst.", c_answered: "Beantw.", c_rate: "Respons",
      c_at: "Datum", c_scores: "Scores", c_comment: "Opmerking", c_who: "Wie hielp", c_customer: "Klant",
      c_kept: "Gehouden", c_renewed: "Vernieuwd", c_broken: "Gebroken", c_open: "Open", c_kept_share: "Op tijd",
      c_waited: "Gewacht", c_wait_p50: "Wacht mediaan", c_wait_p90: "Wacht p90", c_score: "Risico",
      c_reasons: "Waarom", c_done: "Wat is gedaan", c_last: "Laatste feedback", c_score_n: "Score",
      r_search: "Zoek in opmerkingen…", r_found: "{n} gevonden", r_anonymous: "anoniem",
      r_nothing_done: "nog niets", r_task_open: "taak open sinds {d}", r_minutes: "{n} min",
      r_no_rows: "Geen gegevens in deze periode.", lvl_high: "hoog", lvl_medium: "middel", lvl_low: "laag",
    },
    en: {
      callbacks: "Callbacks", callbacks_empty: "No callbacks.",
      cb_due: "now", cb_later: "later", cb_overdue: "overdue", cb_done: "Called", cb_not_reached: "Not reached",
      cb_move: "Move", cb_move_to: "Move to…", cb_attempts: "attempt {n}",
      cb_marked: "Callback updated.",
      promise: "Promise a time", promise_when: "I'll get back to the customer:", promise_1h: "within an hour",
      promise_today: "today", promise_tomorrow: "tomorrow morning", promised: "Promised and told the customer: {text}",
      risk_title: "Promises about to break", risk_at_risk: "about to break", risk_broken: "broken",
      risk_line: "{kind} · {state} · {deadline}",
      follow_ups: "Feedback to follow up", fu_before: "answer before {d}", fu_transcript: "Conversation",
      fu_note: "What did you do? (internal)", fu_message: "Message to the customer", fu_done: "Complete",
      fu_closed: "Follow-up completed; the customer was told.", fu_bot: "bot", fu_empty: "Fill in both fields.",
      reach_out: "Customers to reach out to", reach_done: "Done", reach_note: "What did you do?", reach_closed: "Task closed.",
      reports: "Reports", reports_back: "Back to the conversations",
      r_from: "From", r_to: "To", r_channel: "Channel", r_queue: "Queue", r_agent: "Agent",
      r_served_by: "Bot or person", r_topic: "Topic", r_all: "All", r_none: "—",
      r_period: "{from} to {to} · {n} answers to {sent} surveys sent",
      r_nps: "NPS", r_nps_sub: "{p} promoters · {pa} passives · {d} detractors",
      r_ces: "CES (ease, 1–7)", r_ces_sub: "{n} answers · {easy} easy (5–7)",
      r_csat: "CSAT (1–5)", r_csat_sub: "{n} answers · {sat} satisfied (4–5)",
      r_rate: "Response rate", r_rate_sub: "{a} of {s} surveys answered",
      r_answers: "Answers", r_answers_sub: "{anon} anonymous · {c} with a comment",
      r_trend: "Per week", r_ces_distribution: "CES distribution",
      r_trend_label: "Chart: NPS, response rate and average CES per week",
      r_ces_label: "Chart: number of answers per CES score",
      r_series_nps: "NPS", r_series_rate: "Response rate (%)", r_series_ces: "CES average", r_series_answers: "Answers",
      r_t_weeks: "Per week", r_t_channel: "Per channel", r_t_queue: "Per queue", r_t_agent: "Per agent",
      r_t_served_by: "Bot or person", r_t_topic: "Per topic", r_t_comments: "Comments",
      r_t_promises: "Promises and waits per queue", r_t_churn: "Churn watch-list",
      c_week: "Week", c_answers: "Answ.", c_promoters: "Prom.", c_passives: "Pass.", c_detractors: "Detr.",
      c_ces: "CES", c_csat: "CSAT", c_sent: "Sent", c_answered: "Answered", c_rate: "Rate",
      c_at: "Date", c_scores: "Scores", c_comment: "Comment", c_who: "Served by", c_customer: "Customer",
      c_kept: "Kept", c_renewed: "Renewed", c_broken: "Broken", c_open: "Open", c_kept_share: "In time",
      c_waited: "Waited", c_wait_p50: "Wait median", c_wait_p90: "Wait p90", c_score: "Risk",
      c_reasons: "Why", c_done: "What was done", c_last: "Last feedback", c_score_n: "Score",
      r_search: "Search the comments…", r_found: "{n} found", r_anonymous: "anonymous",
      r_nothing_done: "nothing yet", r_task_open: "task open since {d}", r_minutes: "{n} min",
      r_no_rows: "No data in this period.", lvl_high: "high", lvl_medium: "medium", lvl_low: "low",
      title: "Customer contact desk", language: "Language", logout: "Log out",
      queue: "Queue", queue_empty: "Nobody is waiting.", mine: "My conversations",
      mine_empty: "You have no open conversations.", pick_conversation: "Pick a conversation from the queue.",
      claim: "Claim", open: "View", priority: "priority {n}", waiting_for: "waiting {t}",
      cannot_claim: "Not for you", needs_role: "Only for {role} or higher",
      needs_skill: "Needs skill {skill}", needs_language: "Customer speaks {lang}",
      claimed_by: "Claimed by {name}",
      id_anonymous: "Anonymous (not identified)", id_claimed: "Says who they are, not verified",
      id_verified: "Verified", id_by_code: "with a code", id_by_login: "by the site's login",
      id_by_contact: "by their own Telegram number", id_by_link_code: "by a one-time link",
      id_by_whatsapp: "by the WhatsApp number", id_by_sms: "by the phone number", id_by_telegram: "by Telegram",
      request_title: "Proposed decision:", note_from_colleague: "Note:",
      reply_label: "Reply", reply_placeholder: "Type your reply to the customer…",
      reply_hint: "Enter sends, Shift+Enter starts a new line.", send: "Send",
      handback: "Hand back to bot", handback_resolved: "Resolved, hand back to bot", transfer: "Transfer", close: "Close",
      transfer_role: "To role", transfer_queue: "To queue", transfer_note: "Note for the colleague",
      transfer_submit: "Transfer", keep: "— unchanged —",
      customer: "Customer", no_record: "No customer record.", unknown_customer: "Customer not identified.",
      orders: "Orders", invoices: "Invoices", loyalty: "Loyalty", tickets: "Open tickets",
      decisions: "Earlier decisions", feedback: "Earlier feedback", none: "None.",
      churn: "Churn risk", churn_none: "no signals",
      f_name: "Name", f_number: "Customer number", f_segment: "Segment", f_language: "Language",
      f_channel: "Preferred channel", f_phone: "Phone", f_email: "Email",
      decide: "Decide", decision: "Decision", amount: "Amount (€)", instalments: "Instalments",
      percent: "Percent", order_number: "Order number", note: "Note", decide_submit: "Grant",
      escalate_to: "Escalate to {role}", decided: "Granted. The customer was told:",
      decided_on: "Granted. The customer was told on {channel}:",
      decided_untold: "Granted, but the message to the customer was not sent: please tell them yourself.",
      decided_plain: "Granted.",
      delivery_failed: "Not delivered", delivery_pending: "Not delivered yet (being retried)",
      delivery_reason: "reason: {reason}",
      live_on: "Live", live_off: "Connection lost, reconnecting…", live_connecting: "Connecting…",
      online: "{n} online",
      claimed: "Conversation claimed.", sent: "Sent via {channel}.", handed_back: "The bot has the conversation again.",
      transferred: "Transferred.", closed: "Conversation closed.",
      escalated: "Escalated to {role}; the conversation is back in the queue.",
      err_network: "No connection to the server.", err_http: "Error {status} from the server.",
      err_empty: "Type a message first.", err_amount: "Enter a valid amount.",
      err_instalments: "Enter a valid number of instalments.", err_percent: "Enter a valid percentage.",
      err_transfer: "Choose a role or a queue.",
      media: "attachment", buttons: "buttons", points: "{n} points", promised: "promised {d}",
      open_amount: "open {a}", due: "due {d}", lines: "{n} lines",
      refusal_fallback: "This is beyond your mandate.",
      erase: "Erase customer data (GDPR)",
      erase_hint: "At the customer's request (GDPR): removes everything about this customer everywhere; invoices are kept anonymised.",
      erase_prompt: "All data of {name} ({number}) will be erased everywhere. This cannot be undone. Type the customer number {number} to confirm:",
      erase_cancelled: "Not erased: the customer number did not match.",
      erased: "Customer data erased (erase id {id}).",
      erased_partly: "Database erased (erase id {id}), but not Redis: ask an administrator to finish the erase.",
    },
  };

  const CHANNELS = { whatsapp: "WhatsApp", sms: "SMS", telegram: "Telegram", webchat: "Web", web: "Web", email: "E-mail" };
  const DEFAULT_ROLES = ["agent", "senior_agent", "supervisor"];
  const TYPING_EVERY_MS = 3000; // the web chat shows "typing" 6 s per signal (channels/webchat.py)
  const DEFAULT_QUEUES = ["general", "finance", "retention", "complaints"];
  const DECISION_FIELDS = {
    refund: ["amount", "order"],
    goodwill_voucher: ["amount", "order"],
    payment_arrangement: ["amount", "instalments"],
    retention_discount: ["percent"],
  };

  const state = {
    me: null, csrf: "", lang: "nl", labels: null,
    waiting: [], mine: [], online: 0, queueSig: "",
    open: null, conv: null, convSeq: 0, prefilledFor: null, refusal: null,
    unread: new Set(), knownQueues: new Set(DEFAULT_QUEUES), queueTitles: {},
    es: null, retry: 1000, reconnectTimer: null,
  };

  // ------------------------------------------------------------------ small helpers

  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

  function t(key, vars) {
    const table = I18N[state.lang] || I18N.nl;
    let text = key in table ? table[key] : (key in I18N.en ? I18N.en[key] : key);
    for (const [k, v] of Object.entries(vars || {})) text = text.split(`{${k}}`).join(String(v));
    return text;
  }

  /** The server's label for a code (GET /desk/api/labels); unknown codes without underscores. */
  function label(prefix, value) {
    if (value === null || value === undefined || value === "") return "";
    const labels = state.labels || {};
    const names = (labels[state.lang] || labels.nl || {})[prefix] || {};
    return Object.prototype.hasOwnProperty.call(names, value) ? names[value] : String(value).replace(/_/g, " ");
  }

  const roleLabel = (r) => label("role", r);
  const queueLabel = (q) => {
    const titles = q && state.queueTitles[q];
    if (titles && typeof titles === "object") return titles[state.lang] || titles.nl || titles.en || q;
    return typeof titles === "string" ? titles : (q || "");
  };
  const channelLabel = (c) => CHANNELS[c] || (c ? String(c) : "");

  /** createElement with text children only; attrs: class, testid, text, title, data-*, others. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "testid") node.dataset.testid = v;
      else if (k === "text") node.textContent = String(v);
      else if (k === "disabled" || k === "hidden") node[k] = Boolean(v);
      else node.setAttribute(k, String(v));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(node, visible) { if (node) node.hidden = !visible; }

  function day(value) {
    if (!value) return "";
    const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    return d.toLocaleDateString(state.lang === "en" ? "en-GB" : "nl-NL", { day: "numeric", month: "short", year: "numeric" });
  }

  function clock(value) {
    if (!value) return "";
    const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    const sameDay = d.toDateString() === new Date().toDateString();
    const opts = sameDay ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
    return d.toLocaleString(state.lang === "en" ? "en-GB" : "nl-NL", opts);
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    return `${h} h ${m % 60} min`;
  }

  function parseNumber(text) {
    const clean = String(text || "").trim().replace(/\s|€/g, "").replace(",", ".");
    if (!/^\d+(\.\d+)?$/.test(clean)) return null;
    return Number(clean);
  }

  function coalesce(fn) {
    let running = null;
    let again = false;
    const run = async () => {
      if (running) { again = true; return running; }
      running = (async () => {
        try {
          do { again = false; await fn(); } while (again);
        } finally { running = null; }
      })();
      return running;
    };
    return run;
  }

  // ------------------------------------------------------------------ status line

  let statusTimer = null;

  function setStatus(text, kind = "info") {
    const node = $("status");
    clearTimeout(statusTimer);
    node.textContent = text || "";
    node.dataset.kind = kind;
    node.hidden = !text;
    if (text && kind === "ok") statusTimer = setTimeout(() => { node.hidden = true; }, 8000);
  }

  function showError(err) {
    setStatus(err && err.message ? err.message : t("err_network"), "error");
  }

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, code, message, data) {
      super(message);
      this.status = status;
      this.code = code;
      this.data = data;
    }
  }

  async function api(method, path, body, retried = false) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = state.csrf;
      opts.body = JSON.stringify(body || {});
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, "network", t("err_network"), null);
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (resp.status === 401) {
      window.location.assign("/desk/login");
      throw new ApiError(401, (data && data.error) || "unauthorized", (data && data.message) || "", data);
    }
    if (!resp.ok) {
      const code = (data && data.error) || `http_${resp.status}`;
      if (!retried && resp.status === 403 && /csrf/i.test(code) && method !== "GET") {
        await loadMe();
        return api(method, path, body, true);
      }
      throw new ApiError(resp.status, code, (data && data.message) || t("err_http", { status: resp.status }), data);
    }
    return data;
  }

  const convPath = (conv, action) =>
    `/desk/api/conversations/${encodeURIComponent(conv)}${action ? `/${action}` : ""}`;

  // ------------------------------------------------------------------ i18n on the static page

  function applyI18n() {
    document.documentElement.lang = state.lang;
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
    for (const node of document.querySelectorAll("[data-label]")) node.textContent = label(node.dataset.label, node.value);
    $("lang-switch").value = state.lang;
    renderMe();
    renderLive();
    renderTransferRoles();
    state.queueSig = "";
    renderQueue();
    renderConversation();
    renderReportsToggle();
    renderReport();
  }

  // ------------------------------------------------------------------ me

  async function loadLabels() {
    try {
      state.labels = await api("GET", "/desk/api/labels");
    } catch (err) {
      if (err.status === 401) throw err;
      state.labels = null; // codes are shown as they are
    }
  }

  async function loadMe() {
    const me = await api("GET", "/desk/api/me");
    state.me = me;
    state.csrf = me.csrf || "";
    if (Array.isArray(me.queues)) {
      for (const q of me.queues) state.knownQueues.add(typeof q === "object" ? q.name || q.id : q);
    } else if (me.queues && typeof me.queues === "object") {
      state.knownQueues = new Set(Object.keys(me.queues));
      state.queueTitles = me.queues;
    }
    return me;
  }

  function roles() {
    return Array.isArray(state.me && state.me.roles) && state.me.roles.length ? state.me.roles : DEFAULT_ROLES;
  }

  function renderMe() {
    if (!state.me) return;
    $("agent-name").textContent = state.me.name || state.me.username || "";
    $("agent-role").textContent = roleLabel(state.me.role);
    $("online").textContent = state.online ? t("online", { n: state.online }) : "";
  }

  // ------------------------------------------------------------------ queue

  function whyNot(item) {
    const me = state.me || {};
    const order = roles();
    if (item.role && order.indexOf(me.role) < order.indexOf(item.role)) return t("needs_role", { role: roleLabel(item.role) });
    if (item.skill && Array.isArray(me.skills) && !me.skills.includes(item.skill)) return t("needs_skill", { skill: item.skill });
    if (item.language && Array.isArray(me.languages) && !me.languages.includes(item.language)) {
      return t("needs_language", { lang: label("lang", item.language) });
    }
    if (item.claimed_by) return t("claimed_by", { name: item.claimed_by });
    return t("cannot_claim");
  }

  function waitSpan(item) {
    return el("span", { class: "wait", testid: "queue-wait", "data-created": item.created || "" },
      item.created ? t("waiting_for", { t: duration(Date.now() / 1000 - Number(item.created)) }) : "");
  }

  function queueItem(item) {
    const conv = item.conversation;
    const li = el("li", {
      class: `item${conv === state.open ? " active" : ""}`, testid: "queue-item",
      "data-conversation": conv, "data-role": item.role || "", "data-reason": item.reason || "",
    });
    const open = el("button", { type: "button", class: "link", testid: "queue-open", title: t("open") },
      el("span", { class: "name", testid: "queue-name", text: item.customer_name || conv }));
    open.addEventListener("click", () => openConversation(conv));
    const prio = el("span", { class: "prio", testid: "queue-priority", "data-priority": item.priority ?? "",
      text: t("priority", { n: item.priority ?? 0 }) });
    li.append(el("div", { class: "row" }, open, prio));
    li.append(el("div", { class: "tags" },
      el("span", { class: "tag reason", testid: "queue-reason", text: label("r", item.reason) }),
      el("span", { class: "tag role", testid: "queue-role", text: roleLabel(item.role) }),
      el("span", { class: "tag lang", testid: "queue-language", text: (item.language || "").toUpperCase() }),
      item.queue ? el("span", { class: "tag queue", testid: "queue-queue", "data-queue": item.queue, text: queueLabel(item.queue) }) : null,
      item.channel ? el("span", { class: `tag ch ch-${item.channel}`, testid: "queue-channel", text: channelLabel(item.channel) }) : null,
      waitSpan(item),
      item.promised_by ? el("span", { class: "tag promised", testid: "queue-promised", "data-promised": item.promised_by,
        text: t("promised", { d: clock(item.promised_by) }) }) : null));
    if (item.summary) li.append(el("p", { class: "summary", testid: "queue-summary", text: item.summary }));
    const claim = el("button", { type: "button", testid: "claim", disabled: !item.can_claim, text: t("claim") });
    claim.addEventListener("click", () => claimConversation(conv));
    const actions = el("div", { class: "row" }, claim);
    if (!item.can_claim) {
      const why = whyNot(item);
      claim.title = why;
      actions.append(el("span", { class: "why", testid: "claim-why", text: why }));
    }
    li.append(actions);
    return li;
  }

  function mineItem(item) {
    const conv = item.conversation;
    const li = el("li", { class: `item mine${conv === state.open ? " active" : ""}`, testid: "mine-item", "data-conversation": conv });
    const open = el("button", { type: "button", class: "link" },
      el("span", { class: "name", testid: "mine-name", text: item.customer_name || conv }),
      state.unread.has(conv) ? el("span", { class: "unread", testid: "mine-unread", text: "●" }) : null);
    open.addEventListener("click", () => openConversation(conv));
    li.append(el("div", { class: "row" }, open,
      item.channel ? el("span", { class: `tag ch ch-${item.channel}`, text: channelLabel(item.channel) }) : null));
    li.append(el("div", { class: "tags" },
      el("span", { class: "tag reason", text: label("r", item.reason) }),
      el("span", { class: "tag lang", text: (item.language || "").toUpperCase() })));
    return li;
  }

  function renderQueue() {
    const sig = JSON.stringify([state.lang, state.open, [...state.unread], state.waiting, state.mine]);
    if (sig === state.queueSig) return;
    state.queueSig = sig;
    const list = $("queue-list");
    list.replaceChildren(...state.waiting.map(queueItem));
    $("queue-count").textContent = String(state.waiting.length);
    show($("queue-empty"), state.waiting.length === 0);
    const mine = $("mine-list");
    mine.replaceChildren(...state.mine.map(mineItem));
    $("mine-count").textContent = String(state.mine.length);
    show($("mine-empty"), state.mine.length === 0);
    renderMe();
  }

  function tickWaits() {
    for (const node of document.querySelectorAll('[data-testid="queue-wait"][data-created]')) {
      const created = Number(node.dataset.created);
      if (created) node.textContent = t("waiting_for", { t: duration(Date.now() / 1000 - created) });
    }
  }

  const refreshQueue = coalesce(async () => {
    try {
      const data = await api("GET", "/desk/api/queue");
      state.waiting = Array.isArray(data.waiting) ? data.waiting : [];
      state.mine = Array.isArray(data.mine) ? data.mine : [];
      state.online = data.online || 0;
      for (const item of [...state.waiting, ...state.mine]) if (item.queue) state.knownQueues.add(item.queue);
      renderQueue();
    } catch (err) {
      if (err.status !== 401) showError(err);
    }
  });

  // ------------------------------------------------------------------ conversation

  function openConversation(conv) {
    if (state.open !== conv) {
      state.open = conv;
      state.conv = null;
      state.refusal = null;
      state.prefilledFor = null;
      $("reply-input").value = "";
      show($("transfer-form"), false);
      show($("decide-result"), false);
      show($("decide-refused"), false);
    }
    state.unread.delete(conv);
    renderQueue();
    return refreshConversation();
  }

  const refreshConversation = coalesce(async () => {
    const conv = state.open;
    if (!conv) return;
    const seq = ++state.convSeq;
    try {
      const data = await api("GET", `${convPath(conv)}?lang=${encodeURIComponent(state.lang)}`);
      if (seq !== state.convSeq || conv !== state.open) return;
      state.conv = data;
      renderConversation();
    } catch (err) {
      if (err.status === 401 || conv !== state.open) return;
      if (err.status === 404 || err.status === 409) {
        // Gone, or taken by someone else: stop showing it.
        closeView();
        setStatus(err.message, "info");
      } else {
        showError(err);
      }
    }
  });

  function isMine() {
    const item = state.conv && state.conv.item;
    return Boolean(item && state.me && item.state === "with_agent" && item.claimed_by === state.me.username);
  }

  function describeRequest(req) {
    if (!req || typeof req !== "object") return "";
    const parts = [label("d", req.decision)];
    if (req.amount_text) parts.push(req.amount_text); // formatted by the server
    if (req.instalments) parts.push(`${req.instalments} × ${t("instalments").toLowerCase()}`);
    if (req.percent !== undefined && req.percent !== null) parts.push(`${req.percent}%`);
    if (req.order_number) parts.push(`#${req.order_number}`);
    if (req.note) parts.push(`“${req.note}”`);
    return parts.filter(Boolean).join(" · ");
  }

  function transcriptEntry(entry) {
    const sender = entry.sender === "user" ? "customer" : (entry.sender || "system");
    const delivery = entry.delivery === "failed" || entry.delivery === "pending" ? entry.delivery : "";
    const li = el("li", { class: `entry from-${sender}${delivery ? ` delivery-${delivery}` : ""}`,
      testid: "transcript-entry", "data-sender": sender, "data-channel": entry.channel || "",
      "data-delivery": entry.delivery || "" });
    const who = sender === "agent" && entry.agent
      ? `${label("sender", "agent")} · ${typeof entry.agent === "object" ? (entry.agent.name || entry.agent.username || "") : entry.agent}`
      : label("sender", sender);
    li.append(el("div", { class: "entry-head" },
      el("span", { class: `ch ch-${entry.channel || "none"}`, testid: "entry-channel", text: channelLabel(entry.channel) }),
      el("span", { class: "sender", testid: "entry-sender", text: who }),
      el("time", { class: "at", text: clock(entry.at || entry.ts) })));
    li.append(el("p", { class: "text", testid: "entry-text", text: entry.text || "" }));
    if (Array.isArray(entry.buttons) && entry.buttons.length) {
      li.append(el("p", { class: "extra", text: `${t("buttons")}: ${entry.buttons.map((b) => b.title || b.payload || "").join(" | ")}` }));
    }
    if (Array.isArray(entry.media) && entry.media.length) {
      li.append(el("p", { class: "extra", text: `${t("media")}: ${entry.media.map((m) => (typeof m === "string" ? m : m.url || "")).join(", ")}` }));
    }
    if (entry.image) li.append(el("p", { class: "extra", text: `${t("media")}: ${entry.image}` }));
    if (delivery) {
      const why = delivery === "failed" && entry.delivery_error ? ` · ${t("delivery_reason", { reason: entry.delivery_error })}` : "";
      li.append(el("p", { class: `delivery ${delivery}`, testid: "entry-delivery", text: `${t(`delivery_${delivery}`)}${why}` }));
    }
    return li;
  }

  function renderConversation() {
    const data = state.conv;
    show($("no-conversation"), !state.open);
    show($("conversation"), Boolean(state.open));
    if (!state.open) { renderRecord(null); return; }
    const item = (data && data.item) || {};
    const customer = data && data.customer;
    $("conv-title").textContent = item.customer_name || (customer && customer.name) || state.open;
    const badge = $("conv-state");
    badge.textContent = label("s", item.state);
    badge.dataset.state = item.state || "";
    const meta = [label("r", item.reason), roleLabel(item.role), queueLabel(item.queue), (item.language || "").toUpperCase(),
      channelLabel(item.channel), item.claimed_by ? t("claimed_by", { name: item.claimed_by }) : ""].filter(Boolean);
    $("conv-meta").textContent = meta.join(" · ");
    const identity = (data && data.identity) || { level: "anonymous" };
    const level = $("conv-identity");
    level.textContent = t("id_" + identity.level) + (identity.by ? " " + t("id_by_" + identity.by) : "");
    level.dataset.level = identity.level;

    const req = item.request;
    show($("item-request"), Boolean(req));
    $("item-request-text").textContent = describeRequest(req);
    show($("item-note"), Boolean(item.note));
    $("item-note-text").textContent = item.note || "";
    const summary = $("item-summary");
    summary.textContent = item.summary || "";
    show(summary, Boolean(item.summary));

    const list = $("transcript");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const entries = (data && Array.isArray(data.transcript)) ? data.transcript : [];
    list.replaceChildren(...entries.map(transcriptEntry));
    if (atBottom || list.dataset.conversation !== state.open) list.scrollTop = list.scrollHeight;
    list.dataset.conversation = state.open;

    const mine = isMine();
    for (const id of ["reply-input", "reply-send", "handback", "handback-resolved", "transfer-toggle", "close", "transfer", "promise-toggle"]) {
      $(id).disabled = !mine;
    }
    if (!mine) { show($("transfer-form"), false); show($("promise-form"), false); }
    renderRecord(customer);
    renderDecide(customer, item, mine);
  }

  // ------------------------------------------------------------------ customer record

  function line(testid, ...parts) {
    return el("li", { testid }, parts.filter((p) => p !== null && p !== undefined && p !== "").join(" · "));
  }

  function scalars(obj) {
    return Object.entries(obj || {})
      .filter(([, v]) => v !== null && v !== undefined && v !== "" && typeof v !== "object")
      .map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`).join(" · ");
  }

  function fillList(testid, items, render) {
    const list = $(testid);
    const rows = (Array.isArray(items) ? items : []).map((x) => (x && typeof x === "object" ? render(x) : line("record-row", String(x))));
    list.replaceChildren(...(rows.length ? rows : [el("li", { class: "none", text: t("none") })]));
  }

  /** An amount as the server formatted it (the record's `total`, `amount`, `open` ...). */
  function cents(obj, textKey) {
    return typeof obj[textKey] === "string" ? obj[textKey] : "";
  }

  async function eraseCustomer() {
    const customer = state.conv && state.conv.customer;
    if (!customer || customer.id === undefined) return;
    const number = String(customer.number || customer.customer_number || "");
    const typed = window.prompt(t("erase_prompt", { name: customer.name || "", number }));
    if (typed === null) return;
    if (typed.trim().toUpperCase() !== number.toUpperCase()) { setStatus(t("erase_cancelled"), "error"); return; }
    const button = $("erase-customer");
    button.disabled = true;
    try {
      const data = await api("POST", `/desk/api/customers/${encodeURIComponent(customer.id)}/erase`, { confirm: typed.trim() });
      closeView();
      setStatus(t(data && data.complete ? "erased" : "erased_partly", { id: (data && data.erase_id) || "" }),
        data && data.complete ? "ok" : "error");
      await refreshQueue();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  function renderRecord(customer) {
    show($("no-record"), !customer);
    show($("record"), Boolean(customer));
    show($("erase-box"), Boolean(customer && state.me && state.me.role === "supervisor"));
    if (!customer) {
      $("no-record").textContent = state.open && state.conv ? t("unknown_customer") : t("no_record");
      return;
    }
    const facts = $("record-facts");
    const pairs = [
      ["f_name", customer.name], ["f_number", customer.number || customer.customer_number],
      ["f_segment", customer.segment], ["f_language", label("lang", customer.language)],
      ["f_channel", channelLabel(customer.preferred_channel)], ["f_phone", customer.phone], ["f_email", customer.email],
    ].filter(([, v]) => v);
    facts.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { testid: `record-${k.slice(2)}`, text: v })]));

    // churn
    const churn = customer.churn || {};
    const box = $("record-churn");
    const score = churn.score ?? 0;
    box.dataset.score = String(score);
    box.dataset.level = score >= 60 ? "high" : score >= 25 ? "medium" : score > 0 ? "low" : "none";
    const reasons = Array.isArray(churn.reasons) ? churn.reasons : [];
    box.replaceChildren(
      el("div", { class: "churn-head" }, el("span", { text: `${t("churn")}: ` }),
        el("strong", { testid: "churn-score", text: `${score}/100` }),
        churn.level ? el("span", { class: "level", text: ` (${churn.level})` }) : null),
      reasons.length
        ? el("ul", { testid: "churn-reasons" }, ...reasons.map((r) => el("li", {
          text: typeof r === "object" ? [r.text || r.reason || r.label || r.code || scalars(r), (r.weight ?? r.points) !== undefined && (r.weight ?? r.points) !== null ? `(+${r.weight ?? r.points})` : ""].filter(Boolean).join(" ") : r })))
        : el("p", { class: "none", text: t("churn_none") }));

    fillList("record-orders", customer.orders, (o) => {
      const li = line("record-order", o.order_number || o.number, label("o", o.status), cents(o, "total"),
        day(o.date || o.placed_at || o.placed), o.carrier, o.tracking_code || o.tracking,
        Array.isArray(o.lines) ? o.lines.map((l) => (typeof l === "object" ? l.description || l.sku : l)).join(", ") : "");
      li.dataset.order = o.order_number || o.number || "";
      return li;
    });
    fillList("record-invoices", customer.invoices, (i) => line("record-invoice", i.invoice_number || i.number,
      label("i", i.status), cents(i, "amount"),
      i.open_cents ? t("open_amount", { a: cents(i, "open") }) : "",
      i.due_date || i.due ? t("due", { d: day(i.due_date || i.due) }) : "",
      i.order_number ? `#${i.order_number}` : ""));

    const loyalty = customer.loyalty;
    if (loyalty && typeof loyalty === "object" && !Array.isArray(loyalty)) {
      const rows = [line("record-loyalty-row", loyalty.points !== undefined ? t("points", { n: loyalty.points }) : "", loyalty.tier)];
      for (const r of Array.isArray(loyalty.rewards) ? loyalty.rewards : []) {
        rows.push(line("record-reward", typeof r === "object" ? (r[`name_${state.lang}`] || r.name || r.code) : r,
          typeof r === "object" && (r.points ?? r.points_cost) ? t("points", { n: r.points ?? r.points_cost }) : ""));
      }
      $("record-loyalty").replaceChildren(...rows);
    } else {
      fillList("record-loyalty", loyalty, (x) => line("record-loyalty-row", scalars(x)));
    }
    fillList("record-tickets", customer.tickets, (tk) => line("record-ticket", tk.id !== undefined ? `#${tk.id}` : "",
      tk.kind, tk.status, tk.details, tk.promised_by ? t("promised", { d: clock(tk.promised_by) }) : ""));
    fillList("record-decisions", customer.decisions, (d) => line("record-decision", day(d.created_at || d.at),
      label("d", d.kind || d.decision), cents(d, "amount"),
      d.instalments ? `${d.instalments} × ${t("instalments").toLowerCase()}` : "",
      d.percent !== undefined && d.percent !== null ? `${d.percent}%` : "", roleLabel(d.role), d.actor, d.reason));
    fillList("record-feedback", customer.feedback, (f) => line("record-feedback-row", day(f.created_at || f.at),
      f.ces !== undefined && f.ces !== null ? `CES ${f.ces}/7` : "",
      f.nps !== undefined && f.nps !== null ? `NPS ${f.nps}/10` : "",
      f.csat !== undefined && f.csat !== null ? `★ ${f.csat}/5` : "", f.comment));
  }

  // ------------------------------------------------------------------ decide

  function renderDecideFields() {
    const kind = $("decide-kind").value;
    const wanted = DECISION_FIELDS[kind] || ["amount"];
    for (const node of document.querySelectorAll('[data-testid="decide-form"] [data-field]')) {
      node.hidden = !wanted.includes(node.dataset.field);
    }
  }

  function prefill(req) {
    $("decide-kind").value = "refund";
    for (const id of ["decide-amount", "decide-instalments", "decide-percent", "decide-order", "decide-note"]) $(id).value = "";
    if (req && typeof req === "object") {
      if (DECISION_FIELDS[req.decision]) $("decide-kind").value = req.decision;
      if (req.amount_cents !== undefined && req.amount_cents !== null) $("decide-amount").value = String(Number(req.amount_cents) / 100);
      else if (req.amount !== undefined && req.amount !== null) $("decide-amount").value = String(req.amount);
      if (req.instalments) $("decide-instalments").value = String(req.instalments);
      if (req.percent !== undefined && req.percent !== null) $("decide-percent").value = String(req.percent);
      if (req.order_number) $("decide-order").value = String(req.order_number);
      if (req.note) $("decide-note").value = String(req.note);
    }
    renderDecideFields();
  }

  function renderDecide(customer, item, mine) {
    const form = $("decide-form");
    show(form, Boolean(customer && mine));
    // not the amount as shown: switching the language must not reset what the agent typed
    const sig = JSON.stringify([state.open, item.state, item.claimed_by, item.request || null],
      (k, v) => (k === "amount_text" ? undefined : v));
    if (sig !== state.prefilledFor) {
      state.prefilledFor = sig;
      prefill(item.request);
    }
    const refused = $("decide-refused");
    show(refused, Boolean(state.refusal && mine));
    if (state.refusal) {
      $("decide-explanation").textContent = state.refusal.explanation || t("refusal_fallback");
      $("escalate").textContent = t("escalate_to", { role: roleLabel(state.refusal.escalate_to) });
      $("escalate").dataset.role = state.refusal.escalate_to || "";
    }
  }

  function decisionBody() {
    const kind = $("decide-kind").value;
    const wanted = DECISION_FIELDS[kind] || ["amount"];
    const body = { decision: kind };
    if (wanted.includes("amount") && $("decide-amount").value.trim()) {
      const amount = parseNumber($("decide-amount").value);
      if (amount === null) throw new ApiError(400, "bad_amount", t("err_amount"));
      body.amount = amount;
    }
    if (wanted.includes("instalments") && $("decide-instalments").value.trim()) {
      const n = Number($("decide-instalments").value);
      if (!Number.isInteger(n) || n < 1) throw new ApiError(400, "bad_instalments", t("err_instalments"));
      body.instalments = n;
    }
    if (wanted.includes("percent") && $("decide-percent").value.trim()) {
      const p = parseNumber($("decide-percent").value);
      if (p === null || p > 100) throw new ApiError(400, "bad_percent", t("err_percent"));
      body.percent = p;
    }
    if (wanted.includes("order") && $("decide-order").value.trim()) body.order_number = $("decide-order").value.trim();
    const note = $("decide-note").value.trim();
    if (note) body.note = note;
    return body;
  }

  /** What the customer was told: the API gives the text, or only the channel it went out on
   *  (then the text is the newest agent message in the transcript since the decision). */
  function toldMessage(told, seen) {
    if (told === null || told === undefined) return { text: "", channel: "" };
    if (typeof told === "string" && !(told in CHANNELS)) return { text: told, channel: "" };
    if (typeof told === "object") {
      if (typeof told.text === "string") return { text: told.text, channel: told.channel || "" };
      const lang = (state.conv && state.conv.item && state.conv.item.language) || state.lang;
      const text = told[lang] || told.nl || told.en;
      if (typeof text === "string") return { text, channel: told.channel || "" };
    }
    const channel = typeof told === "string" ? told : "";
    const entries = ((state.conv && state.conv.transcript) || []).slice(seen);
    const mine = entries.filter((e) => e.sender === "agent");
    const last = mine.length ? mine[mine.length - 1] : null;
    return { text: last ? last.text || "" : "", channel: channel || (last && last.channel) || "" };
  }

  async function submitDecision(event) {
    event.preventDefault();
    const conv = state.open;
    if (!conv) return;
    const button = $("decide-submit");
    const result = $("decide-result");
    show(result, false);
    state.refusal = null;
    show($("decide-refused"), false);
    let body;
    try { body = decisionBody(); } catch (err) { showError(err); return; }
    button.disabled = true;
    try {
      const data = await api("POST", convPath(conv, "decide"), body);
      const seen = ((state.conv && state.conv.transcript) || []).length;
      await refreshConversation();
      const told = toldMessage(data && data.told, seen);
      const channel = told.channel ? channelLabel(told.channel) : "";
      result.replaceChildren(
        el("p", { class: "ok", text: told.text ? t(channel ? "decided_on" : "decided", { channel }) : t(data && data.told === null ? "decided_untold" : "decided_plain") }),
        told.text ? el("blockquote", { testid: "decide-told", text: told.text }) : "");
      result.dataset.decisionId = data && data.decision_id !== undefined ? String(data.decision_id) : "";
      show(result, true);
      setStatus(t("decided_plain"), "ok");
    } catch (err) {
      if (err.status === 403 && err.data && err.data.allowed === false) {
        state.refusal = {
          escalate_to: err.data.escalate_to, explanation: err.data.explanation || err.data.message,
          request: err.data.request || body, note: body.note || "",
        };
        renderDecide(state.conv && state.conv.customer, (state.conv && state.conv.item) || {}, isMine());
        setStatus(state.refusal.explanation || t("refusal_fallback"), "error");
      } else {
        showError(err);
      }
    } finally {
      button.disabled = false;
    }
  }

  async function escalate() {
    const conv = state.open;
    const refusal = state.refusal;
    if (!conv || !refusal) return;
    const button = $("escalate");
    button.disabled = true;
    try {
      const body = { role: refusal.escalate_to, request: refusal.request };
      const note = $("decide-note").value.trim() || refusal.note;
      if (note) body.note = note;
      await api("POST", convPath(conv, "escalate"), body);
      state.refusal = null;
      show($("decide-refused"), false);
      setStatus(t("escalated", { role: roleLabel(refusal.escalate_to) }), "ok");
      await Promise.all([refreshQueue(), refreshConversation()]);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ actions

  async function claimConversation(conv) {
    try {
      await api("POST", convPath(conv, "claim"), {});
      setStatus(t("claimed"), "ok");
      state.open = null; // force a fresh open (resets the panels)
      await Promise.all([refreshQueue(), openConversation(conv)]);
      $("reply-input").focus();
    } catch (err) {
      showError(err);
      refreshQueue();
    }
  }

  async function sendReply(event) {
    if (event) event.preventDefault();
    const conv = state.open;
    const input = $("reply-input");
    const text = input.value.trim();
    if (!conv || !isMine()) return;
    if (!text) { setStatus(t("err_empty"), "error"); return; }
    const button = $("reply-send");
    button.disabled = true;
    input.readOnly = true;
    try {
      const data = await api("POST", convPath(conv, "reply"), { text });
      if (input.value.trim() === text) input.value = "";
      setStatus(t("sent", { channel: channelLabel(data && data.channel) || "—" }), "ok");
      refreshConversation();
    } catch (err) {
      showError(err);
    } finally {
      input.readOnly = false;
      button.disabled = !isMine();
      input.focus();
    }
  }

  /** While the agent types a reply, the customer's web chat shows "Anna is typing" (said again
   * every few seconds while typing goes on; it goes out by itself when the agent stops). */
  let typingSaid = 0;
  function typing() {
    const conv = state.open;
    if (!conv || !isMine() || !$("reply-input").value.trim()) return;
    const now = Date.now();
    if (now - typingSaid < TYPING_EVERY_MS) return;
    typingSaid = now;
    api("POST", convPath(conv, "typing"), {}).catch(() => { /* only a courtesy */ });
  }

  /** Hand back or close: the conversation leaves the agent, so the view closes too. */
  async function finishAction(action, okKey, body) {
    const conv = state.open;
    if (!conv) return;
    for (const id of ["handback", "handback-resolved", "close"]) $(id).disabled = true;
    try {
      await api("POST", convPath(conv, action), body || {});
      if (state.open === conv) closeView();
      setStatus(t(okKey), "ok");
      await refreshQueue();
    } catch (err) {
      showError(err);
      renderConversation();
    }
  }

  function closeView() {
    state.open = null;
    state.conv = null;
    state.refusal = null;
    state.prefilledFor = null;
    state.convSeq += 1;
    $("reply-input").value = "";
    show($("transfer-form"), false);
    show($("decide-result"), false);
    show($("decide-refused"), false);
    renderQueue();
    renderConversation();
    renderReportsToggle();
    renderReport();
  }

  function renderTransferRoles() {
    const select = $("transfer-role");
    const current = select.value;
    select.replaceChildren(el("option", { value: "", text: t("keep") }),
      ...roles().filter((r) => r !== "bot").map((r) => el("option", { value: r, text: roleLabel(r) })));
    select.value = current;
    const queues = $("transfer-queue");
    const currentQueue = queues.value;
    queues.replaceChildren(el("option", { value: "", text: t("keep") }),
      ...[...state.knownQueues].map((q) => el("option", { value: q, text: queueLabel(q) })));
    queues.value = currentQueue;
  }

  async function submitTransfer(event) {
    event.preventDefault();
    const conv = state.open;
    if (!conv) return;
    const body = {};
    const role = $("transfer-role").value;
    const queue = $("transfer-queue").value.trim();
    const note = $("transfer-note").value.trim();
    if (!role && !queue) { setStatus(t("err_transfer"), "error"); return; }
    if (role) body.role = role;
    if (queue) body.queue = queue;
    if (note) body.note = note;
    try {
      await api("POST", convPath(conv, "transfer"), body);
      setStatus(t("transferred"), "ok");
      $("transfer-note").value = "";
      show($("transfer-form"), false);
      await Promise.all([refreshQueue(), refreshConversation()]);
    } catch (err) {
      showError(err);
    }
  }

  async function logout() {
    try {
      await fetch("/desk/logout", {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": state.csrf, "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ csrf: state.csrf }).toString(),
      });
    } catch (e) { /* go to the login page anyway */ }
    window.location.assign("/desk/login");
  }

  // ------------------------------------------------------------------ live events (SSE)

  function setLive(mode) {
    $("live").dataset.state = mode;
    renderLive();
  }

  function renderLive() {
    const node = $("live");
    const mode = node.dataset.state || "connecting";
    node.title = t(`live_${mode}`);
    node.textContent = mode === "on" ? "● live" : mode === "off" ? "○ offline" : "◌";
  }

  function parseData(event) {
    try { return JSON.parse(event.data || "{}") || {}; } catch (e) { return {}; }
  }

  function connectEvents() {
    clearTimeout(state.reconnectTimer);
    if (state.es) state.es.close();
    setLive("connecting");
    const es = new EventSource("/desk/events");
    state.es = es;
    es.addEventListener("open", () => {
      setLive("on");
      state.retry = 1000;
      // Events may have been missed while (re)connecting.
      refreshQueue();
      if (state.open) refreshConversation();
    });
    es.addEventListener("queue", () => refreshQueue());
    for (const name of ["promise_at_risk", "promise_broken", "promise_renewed"]) {
      es.addEventListener(name, () => { refreshPromises(); refreshCallbacks(); });
    }
    es.addEventListener("callbacks", () => refreshCallbacks());
    es.addEventListener("message", (event) => {
      const data = parseData(event);
      if (!data.conversation) return;
      if (data.conversation === state.open) refreshConversation();
      else if (state.mine.some((i) => i.conversation === data.conversation)) {
        state.unread.add(data.conversation);
        renderQueue();
      }
    });
    es.addEventListener("state", (event) => {
      const data = parseData(event);
      refreshQueue();
      if (data.conversation && data.conversation === state.open) refreshConversation();
    });
    es.addEventListener("error", () => {
      if (state.es !== es) return;
      setLive("off");
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. a non-stream answer): check the session, then try again.
        const wait = state.retry;
        state.retry = Math.min(state.retry * 2, 30000);
        state.reconnectTimer = setTimeout(async () => {
          try { await loadMe(); } catch (err) { if (err.status === 401) return; }
          connectEvents();
        }, wait);
      }
    });
  }


  // ------------------------------------------------------------------ callbacks and promises

  const fmtTime = (iso) => {
    try {
      return new Date(iso).toLocaleString(state.lang === "en" ? "en-GB" : "nl-NL",
        { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
    } catch (e) { return iso; }
  };

  const refreshCallbacks = coalesce(async () => {
    let data;
    try {
      data = await api("GET", "/desk/api/callbacks");
    } catch (err) {
      if (err.status === 403) { show($("callbacks"), false); return; }  // not this agent's queue
      if (err.status !== 401) showError(err);
      return;
    }
    show($("callbacks"), true);
    const list = $("callbacks-list");
    list.replaceChildren();
    const rows = [...(data.overdue || []), ...(data.due || []), ...(data.later || [])];
    $("callbacks-count").textContent = String(rows.length);
    show($("callbacks-empty"), rows.length === 0);
    for (const row of rows) {
      const move = el("select", { testid: "callback-move", "aria-label": t("cb_move_to") },
        el("option", { value: "", text: t("cb_move_to") }),
        ...(data.windows || []).map((w) => el("option", { value: w.start, text: w.title })));
      const item = el("li", { class: `callback ${row.state}`, testid: "callback-item", "data-ticket": row.ticket,
                              "data-state": row.state },
        el("div", { class: "line" }, el("strong", { text: row.customer || row.customer_number }),
           " ", el("span", { class: "badge", testid: "callback-state", text: t(`cb_${row.state}`) })),
        el("div", { class: "meta", testid: "callback-window", text: row.window || fmtTime(row.window_end) }),
        el("div", { class: "meta", text: [row.phone, row.preferred_time, row.attempts ? t("cb_attempts", { n: row.attempts + 1 }) : ""]
          .filter(Boolean).join(" · ") }),
        el("div", { class: "buttons" },
          el("button", { type: "button", class: "secondary", testid: "callback-done", text: t("cb_done") }),
          el("button", { type: "button", class: "secondary", testid: "callback-not-reached", text: t("cb_not_reached") }),
          move));
      item.querySelector('[data-testid="callback-done"]').addEventListener("click", () => callbackAction(row.ticket, "done"));
      item.querySelector('[data-testid="callback-not-reached"]').addEventListener("click", () => callbackAction(row.ticket, "not_reached"));
      move.addEventListener("change", () => { if (move.value) callbackAction(row.ticket, "moved", { start: move.value }); });
      list.append(item);
    }
  });

  async function callbackAction(ticket, action, body) {
    try {
      await api("POST", `/desk/api/callbacks/${encodeURIComponent(ticket)}/${action}`, body || {});
      setStatus(t("cb_marked"), "ok");
    } catch (err) {
      showError(err);
    }
    refreshCallbacks();
  }

  const refreshReachOut = coalesce(async () => {
    let data;
    try { data = await api("GET", "/desk/api/reach-out"); } catch (err) { return; }
    const rows = data.reach_out || [];
    const list = $("reach-out-list");
    list.replaceChildren();
    $("reach-out-count").textContent = String(rows.length);
    show($("reach-out"), rows.length > 0);
    for (const row of rows) {
      const done = el("button", { type: "button", class: "secondary", testid: "reach-out-done", text: t("reach_done") });
      const item = el("li", { class: "callback", testid: "reach-out-item", "data-ticket": row.ticket },
        el("div", { class: "line" }, el("strong", { text: row.customer || row.customer_number }),
           row.churn !== null && row.churn !== undefined ? ` · churn ${row.churn}` : ""),
        el("div", { class: "meta", testid: "reach-out-reasons", text: (row.reasons || []).join("; ") }),
        el("div", { class: "buttons" }, done));
      done.addEventListener("click", async () => {
        const note = window.prompt(t("reach_note"), "");
        if (note === null) return;
        try {
          await api("POST", `/desk/api/reach-out/${encodeURIComponent(row.ticket)}/done`, { note });
          setStatus(t("reach_closed"), "ok");
        } catch (err) { showError(err); }
        refreshReachOut();
      });
      list.append(item);
    }
  });

  const refreshFollowUps = coalesce(async () => {
    let data;
    try { data = await api("GET", "/desk/api/feedback-followups"); } catch (err) { return; }
    const rows = data.follow_ups || [];
    const list = $("follow-ups-list");
    list.replaceChildren();
    $("follow-ups-count").textContent = String(rows.length);
    show($("follow-ups"), rows.length > 0);
    for (const row of rows) {
      const scores = Object.entries(row.scores || {}).map(([k, v]) => `${k.toUpperCase()} ${v}`).join(" · ");
      const note = el("input", { type: "text", testid: "follow-up-note", maxlength: "500", "aria-label": t("fu_note"), placeholder: t("fu_note") });
      const message = el("textarea", { testid: "follow-up-message", rows: "2", maxlength: "1000", "aria-label": t("fu_message"), placeholder: t("fu_message") });
      const done = el("button", { type: "button", testid: "follow-up-done", text: t("fu_done") });
      const history = el("ul", { class: "transcript", testid: "follow-up-transcript" },
        ...(row.transcript || []).map((m) => el("li", { class: `msg ${m.sender}` }, el("span", { class: "meta", text: `${label("sender", m.sender)} ${clock(m.at)}` }), " ", m.text || "")));
      const item = el("li", { class: "callback", testid: "follow-up-item", "data-ticket": row.ticket },
        el("div", { class: "line" }, el("strong", { text: row.customer || row.customer_number }),
           ` · ${scores}`, row.promised_by ? ` · ${t("fu_before", { d: clock(row.promised_by) })}` : ""),
        el("div", { class: "meta", testid: "follow-up-comment", text: row.comment || "" }),
        el("div", { class: "meta", text: [row.queue, row.channel, row.served_by === "bot" ? t("fu_bot") : row.served_by].filter(Boolean).join(" · ") }),
        el("details", {}, el("summary", { text: t("fu_transcript") }), history),
        note, message, el("div", { class: "buttons" }, done));
      done.addEventListener("click", async () => {
        if (!note.value.trim() || !message.value.trim()) { setStatus(t("fu_empty"), "error"); return; }
        done.disabled = true;
        try {
          await api("POST", `/desk/api/feedback-followups/${encodeURIComponent(row.ticket)}/done`,
            { note: note.value.trim(), message: message.value.trim() });
          setStatus(t("fu_closed"), "ok");
        } catch (err) { showError(err); done.disabled = false; return; }
        refreshFollowUps();
      });
      list.append(item);
    }
  });

  const refreshPromises = coalesce(async () => {
    let data;
    try { data = await api("GET", "/desk/api/promises"); } catch (err) { return; }
    const rows = data.promises || [];
    const list = $("promise-banner-list");
    list.replaceChildren();
    $("promise-banner-title").textContent = t("risk_title");
    for (const row of rows.slice(0, 8)) {
      const item = el("li", { testid: "promise-risk", "data-state": row.state, "data-promise": row.promise,
                              text: t("risk_line", { kind: label("kind", row.kind) || row.kind,
                                                      state: t(`risk_${row.state}`), deadline: fmtTime(row.deadline) }) });
      if (row.conversation) {
        item.classList.add("link");
        item.addEventListener("click", () => openConversation(row.conversation));
      }
      list.append(item);
    }
    show($("promise-banner"), rows.length > 0);
  });

  async function makePromise(preset) {
    if (!state.open) return;
    try {
      const made = await api("POST", convPath(state.open, "promise"), { preset });
      setStatus(t("promised", { text: made.text }), "ok");
      show($("promise-form"), false);
      refreshConversation();
    } catch (err) {
      showError(err);
    }
  }

  // ------------------------------------------------------------------ reports (supervisors)
  // GET /desk/api/reports/feedback (bot/reports/feedback.py); what each figure means: docs/reports.md.
  // The charts are drawn with Chart.js, vendored in /desk/static/vendor/chart.js/ (no CDN: the
  // page's CSP allows scripts from the desk itself only) and loaded the first time the view opens.

  const CHART_JS = "/desk/static/vendor/chart.js/chart.umd.min.js";
  const REPORT_DIMENSIONS = ["channel", "queue", "agent", "served_by", "topic"];
  const reports = { open: false, data: null, charts: {}, seq: 0, chartLib: null, searchTimer: null, q: "" };

  function loadChartLib() {
    if (window.Chart) return Promise.resolve(window.Chart);
    if (!reports.chartLib) {
      reports.chartLib = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = CHART_JS;
        script.onload = () => resolve(window.Chart);
        script.onerror = () => { reports.chartLib = null; reject(new Error("chart.js")); };
        document.head.append(script);
      });
    }
    return reports.chartLib;
  }

  const locale = () => (state.lang === "en" ? "en-GB" : "nl-NL");
  const num = (v, digits = 1) => (v === null || v === undefined ? "–"
    : Number(v).toLocaleString(locale(), { maximumFractionDigits: digits }));
  const pct = (v) => (v === null || v === undefined ? "–"
    : Number(v).toLocaleString(locale(), { style: "percent", maximumFractionDigits: 0 }));
  const signed = (v) => (v === null || v === undefined ? "–" : `${v > 0 ? "+" : ""}${num(v)}`);

  function dimensionLabel(dim, value) {
    if (value === "-" || value === null || value === undefined || value === "") return t("r_none");
    if (dim === "channel") return channelLabel(value);
    if (dim === "queue") return queueLabel(value);
    if (dim === "served_by") return label("served", value);
    if (dim === "topic") return label("topic", value);
    return String(value);
  }

  function reportParams(extra) {
    const params = new URLSearchParams();
    for (const node of document.querySelectorAll("[data-testid='report-filters'] [data-param]")) {
      if (node.value) params.set(node.dataset.param, node.value);
    }
    if (reports.q) params.set("q", reports.q);
    for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
    return params;
  }

  const csvHref = (table) => `/desk/api/reports/feedback?${reportParams({ format: "csv", table, lang: state.lang })}`;

  function renderReportsToggle() {
    const button = $("reports-toggle");
    const supervisor = Boolean(state.me && state.me.role === "supervisor");
    show(button, supervisor);
    button.textContent = reports.open ? t("reports_back") : t("reports");
    button.setAttribute("aria-pressed", reports.open ? "true" : "false");
  }

  function toggleReports(open) {
    reports.open = open === undefined ? !reports.open : open;
    show(document.querySelector("main.desk"), !reports.open);
    show($("reports"), reports.open);
    renderReportsToggle();
    if (reports.open) loadReport();
  }

  const loadReport = coalesce(async () => {
    const seq = ++reports.seq;
    $("reports").dataset.loading = "1";
    let data;
    try {
      [data] = await Promise.all([api("GET", `/desk/api/reports/feedback?${reportParams()}`),
                                  loadChartLib().catch(() => null)]);
    } catch (err) {
      delete $("reports").dataset.loading;
      showError(err);
      return;
    }
    if (seq !== reports.seq) return;
    reports.data = data;
    renderReport();
    delete $("reports").dataset.loading;
    $("reports").dataset.loaded = String(seq);
  });

  function fillFilter(select, dim, options) {
    const current = select.value;
    const values = [...new Set([...(options || []), ...(current ? [current] : [])])];
    select.replaceChildren(el("option", { value: "", text: t("r_all") }),
      ...values.map((v) => el("option", { value: v, text: dimensionLabel(dim, v) })));
    select.value = current;
  }

  function card(testid, title, value, sub, tone) {
    return el("div", { class: "card", testid, "data-tone": tone || null },
      el("div", { class: "card-title", text: title }),
      el("div", { class: "card-value", testid: `${testid}-value`, text: value }),
      el("div", { class: "card-sub", text: sub }));
  }

  function renderCards(total) {
    const tone = (v, good, bad) => (v === null || v === undefined ? null : v >= good ? "good" : v <= bad ? "bad" : null);
    $("report-cards").replaceChildren(
      card("card-nps", t("r_nps"), signed(total.nps),
        t("r_nps_sub", { p: total.promoters, pa: total.passives, d: total.detractors }), tone(total.nps, 30, 0)),
      card("card-ces", t("r_ces"), num(total.ces_average, 2),
        t("r_ces_sub", { n: total.ces_answers, easy: pct(total.ces_easy_share) }), tone(total.ces_average, 5.5, 4)),
      card("card-csat", t("r_csat"), num(total.csat_average, 2),
        t("r_csat_sub", { n: total.csat_answers, sat: pct(total.csat_satisfied_share) }), tone(total.csat_average, 4, 3)),
      card("card-rate", t("r_rate"), pct(total.response_rate), t("r_rate_sub", { a: total.answered, s: total.sent })),
      card("card-answers", t("r_answers"), num(total.answers, 0),
        t("r_answers_sub", { anon: total.anonymous, c: total.comments })));
  }

  function chartColors() {
    return { nps: "#1f5fbf", rate: "#a35a00", ces: "rgba(28, 122, 62, 0.35)", cesLine: "#1c7a3e",
             low: "#b3261e", mid: "#8a94a3", high: "#1c7a3e", grid: "#e4e7ec", ink: "#1d2330" };
  }

  function drawCharts(data) {
    const Chart = window.Chart;
    for (const chart of Object.values(reports.charts)) chart.destroy();
    reports.charts = {};
    const trend = $("chart-trend");
    const ces = $("chart-ces");
    trend.setAttribute("aria-label", t("r_trend_label"));
    ces.setAttribute("aria-label", t("r_ces_label"));
    if (!Chart) return;
    const c = chartColors();
    const weeks = data.weeks || [];
    const common = { responsive: true, maintainAspectRatio: false, animation: false, locale: locale(),
                     interaction: { mode: "index", intersect: false },
                     plugins: { legend: { position: "bottom", labels: { color: c.ink, usePointStyle: true } } } };
    reports.charts.trend = new Chart(trend, {
      data: {
        labels: weeks.map((w) => w.week.slice(5)),  // "2026-W45" -> "W45"
        datasets: [
          { type: "line", label: t("r_series_nps"), data: weeks.map((w) => w.nps), yAxisID: "score",
            borderColor: c.nps, backgroundColor: c.nps, borderWidth: 3, pointRadius: 4, pointStyle: "circle", spanGaps: true },
          { type: "line", label: t("r_series_rate"), yAxisID: "score", borderDash: [6, 4], pointStyle: "rect",
            data: weeks.map((w) => (w.response_rate === null ? null : Math.round(w.response_rate * 100))),
            borderColor: c.rate, backgroundColor: c.rate, borderWidth: 2, pointRadius: 3, spanGaps: true },
          { type: "bar", label: t("r_series_ces"), data: weeks.map((w) => w.ces_average), yAxisID: "ces",
            backgroundColor: c.ces, borderColor: c.cesLine, borderWidth: 1, pointStyle: "rectRounded" },
        ],
      },
      options: { ...common, scales: {
        score: { position: "left", min: -100, max: 100, title: { display: true, text: `${t("r_series_nps")} · %` },
                 grid: { color: c.grid } },
        ces: { position: "right", min: 1, max: 7, title: { display: true, text: "CES" }, grid: { drawOnChartArea: false } },
      } },
    });
    const dist = data.ces_distribution || [];
    reports.charts.ces = new Chart(ces, {
      type: "bar",
      data: { labels: dist.map((d) => String(d.score)),
              datasets: [{ label: t("r_series_answers"), data: dist.map((d) => d.answers),
                           backgroundColor: dist.map((d) => (d.score <= 3 ? c.low : d.score >= 5 ? c.high : c.mid)) }] },
      options: { ...common, plugins: { legend: { display: false } },
                 scales: { x: { title: { display: true, text: t("r_ces") } },
                           y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: t("r_series_answers") } } } },
    });
  }

  /** One table with its title and CSV download; columns: [key, header, cell(row), class]. */
  function reportTable(name, title, columns, rows, opts = {}) {
    const head = el("div", { class: "table-head" }, el("span", { text: title }),
      el("a", { class: "button secondary csv", testid: `csv-${name}`, href: csvHref(name), download: "" , text: "CSV" }));
    const table = el("table", { testid: `table-${name}-rows` },
      el("thead", {}, el("tr", {}, ...columns.map(([, header, , cls]) => el("th", { class: cls || null, text: header })))),
      el("tbody", {}, ...rows.map((row) => el("tr", { testid: `${name}-row` },
        ...columns.map(([, , cell, cls]) => {
          const value = cell(row);
          const td = el("td", { class: cls || null });
          if (value instanceof Node) td.append(value); else td.textContent = value === null || value === undefined ? "" : String(value);
          return td;
        })))));
    const box = el("section", { class: `report-table${opts.wide ? " wide" : ""}`, testid: `table-${name}` }, head);
    if (opts.before) box.append(opts.before);
    box.append(rows.length ? table : el("p", { class: "empty", text: t("r_no_rows") }));
    return box;
  }

  /** The figure columns of the weekly table; the breakdowns leave out the NPS groups (their CSV has them). */
  const figureColumns = (groups = false) => [
    ["answers", t("c_answers"), (r) => num(r.answers, 0), "num"],
    ["nps", "NPS", (r) => signed(r.nps), "num"],
    ...(groups ? [["promoters", t("c_promoters"), (r) => r.promoters, "num"],
                  ["passives", t("c_passives"), (r) => r.passives, "num"],
                  ["detractors", t("c_detractors"), (r) => r.detractors, "num"]] : []),
    ["ces", t("c_ces"), (r) => num(r.ces_average, 2), "num"],
    ["csat", t("c_csat"), (r) => num(r.csat_average, 2), "num"],
    ["sent", t("c_sent"), (r) => r.sent, "num"],
    ["answered", t("c_answered"), (r) => r.answered, "num"],
    ["rate", t("c_rate"), (r) => pct(r.response_rate), "num"],
  ];

  function scores(row) {
    return [row.nps !== null && row.nps !== undefined ? `NPS ${row.nps}` : "", row.ces ? `CES ${row.ces}` : "",
            row.csat ? `CSAT ${row.csat}` : ""].filter(Boolean).join(" · ");
  }

  function churnDone(row) {
    if (!row.tasks || !row.tasks.length) return t("r_nothing_done");
    return row.tasks.map((task) => (task.status === "open" ? t("r_task_open", { d: day(task.created_at) })
      : `${day(task.closed_at)}${task.done_by ? ` (${task.done_by})` : ""}: ${task.note || "–"}`)).join("; ");
  }

  function renderTables(data) {
    const search = el("input", { type: "search", class: "search", testid: "report-search",
                                 placeholder: t("r_search"), "aria-label": t("r_search") });
    search.value = reports.q;
    search.addEventListener("input", () => {
      clearTimeout(reports.searchTimer);
      reports.searchTimer = setTimeout(() => { reports.q = search.value.trim(); loadReport(); }, 300);
    });
    const found = el("span", { class: "hint", testid: "report-found", text: ` ${t("r_found", { n: data.comments_found })}` });
    const tables = [
      reportTable("weeks", t("r_t_weeks"), [["week", t("c_week"), (r) => r.week], ...figureColumns(true)], data.weeks, { wide: true }),
      ...REPORT_DIMENSIONS.map((dim) => reportTable(dim, t(`r_t_${dim}`),
        [[dim, t(`r_${dim}`), (r) => dimensionLabel(dim, r[dim])], ...figureColumns()], data.breakdowns[dim] || [])),
      reportTable("comments", t("r_t_comments"), [
        ["at", t("c_at"), (r) => day(r.at)],
        ["scores", t("c_scores"), (r) => scores(r), "num"],
        ["comment", t("c_comment"), (r) => r.comment],
        ["who", t("c_who"), (r) => [label("served", r.served_by), r.agent, dimensionLabel("queue", r.queue)]
          .filter((x) => x && x !== t("r_none")).join(" · ")],
        ["customer", t("c_customer"), (r) => (r.anonymous ? t("r_anonymous") : r.customer_number || "")],
      ], data.comments, { wide: true, before: el("div", {}, search, found) }),
      reportTable("promises", t("r_t_promises"), [
        ["queue", t("r_queue"), (r) => dimensionLabel("queue", r.queue)],
        ["kept", t("c_kept"), (r) => r.kept, "num"], ["renewed", t("c_renewed"), (r) => r.renewed, "num"],
        ["broken", t("c_broken"), (r) => r.broken, "num"], ["open", t("c_open"), (r) => r.open, "num"],
        ["share", t("c_kept_share"), (r) => pct(r.kept_or_renewed_share), "num"],
        ["waited", t("c_waited"), (r) => r.waited, "num"],
        ["p50", t("c_wait_p50"), (r) => (r.wait_median_minutes === null ? "–" : t("r_minutes", { n: num(r.wait_median_minutes) })), "num"],
        ["p90", t("c_wait_p90"), (r) => (r.wait_p90_minutes === null ? "–" : t("r_minutes", { n: num(r.wait_p90_minutes) })), "num"],
      ], data.promises || [], { wide: true }),
      reportTable("churn", t("r_t_churn"), [
        ["customer", t("c_customer"), (r) => `${r.customer_number} ${r.name}`],
        ["score", t("c_score_n"), (r) => `${r.score} · ${t(`lvl_${r.level}`)}`, "num"],
        ["reasons", t("c_reasons"), (r) => (r.reasons || []).map((x) => x[state.lang] || x.nl || x.code).join(" ")],
        ["done", t("c_done"), (r) => churnDone(r)],
        ["last", t("c_last"), (r) => (r.last_feedback ? `${day(r.last_feedback.at)} ${scores(r.last_feedback)}` : "")],
      ], data.churn || [], { wide: true }),
    ];
    const focused = document.activeElement && document.activeElement.dataset.testid === "report-search";
    $("report-tables").replaceChildren(...tables);
    if (focused) { const box = $("report-search"); box.focus(); box.setSelectionRange(box.value.length, box.value.length); }
  }

  function renderReport() {
    const data = reports.data;
    if (!data || !reports.open) return;
    if (!$("report-from").value) $("report-from").value = data.from;
    if (!$("report-to").value) $("report-to").value = data.to;
    for (const select of document.querySelectorAll("[data-testid='report-filters'] select[data-filter]")) {
      fillFilter(select, select.dataset.filter, (data.options || {})[select.dataset.filter]);
    }
    $("report-period").textContent = t("r_period", { from: day(data.from), to: day(data.to), n: data.total.answers,
                                                      sent: data.total.sent });
    renderCards(data.total);
    drawCharts(data);
    for (const link of document.querySelectorAll("[data-csv]")) link.href = csvHref(link.dataset.csv);
    renderTables(data);
  }

  // ------------------------------------------------------------------ start

  function wire() {
    $("lang-switch").addEventListener("change", (e) => {
      state.lang = I18N[e.target.value] ? e.target.value : "nl";
      try { sessionStorage.setItem("desk.lang", state.lang); } catch (err) { /* private mode */ }
      applyI18n();
      refreshConversation(); // the record's amounts, formatted by the server in the new language
    });
    $("logout").addEventListener("click", logout);
    $("reply-form").addEventListener("submit", sendReply);
    $("reply-input").addEventListener("input", typing);
    $("reply-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing) {
        e.preventDefault();
        sendReply();
      }
    });
    $("handback").addEventListener("click", () => finishAction("handback", "handed_back"));
    $("handback-resolved").addEventListener("click", () => finishAction("handback", "handed_back", { resolved: true }));
    $("close").addEventListener("click", () => finishAction("close", "closed"));
    $("transfer-toggle").addEventListener("click", () => show($("transfer-form"), $("transfer-form").hidden));
    $("transfer-form").addEventListener("submit", submitTransfer);
    $("decide-kind").addEventListener("change", renderDecideFields);
    $("decide-form").addEventListener("submit", submitDecision);
    $("escalate").addEventListener("click", escalate);
    $("erase-customer").addEventListener("click", eraseCustomer);
    $("promise-toggle").addEventListener("click", () => show($("promise-form"), $("promise-form").hidden));
    $("reports-toggle").addEventListener("click", () => toggleReports());
    $("report-filters").addEventListener("change", () => loadReport());
    $("report-filters").addEventListener("submit", (e) => { e.preventDefault(); loadReport(); });
    for (const button of document.querySelectorAll("[data-preset]")) {
      button.addEventListener("click", () => makePromise(button.dataset.preset));
    }
    setInterval(() => { refreshCallbacks(); refreshPromises(); refreshReachOut(); refreshFollowUps(); }, 60000);
    setInterval(tickWaits, 5000);
    setInterval(() => { if (!state.es || state.es.readyState !== EventSource.OPEN) refreshQueue(); }, 30000);
  }

  async function start() {
    wire();
    try {
      await Promise.all([loadMe(), loadLabels()]);
    } catch (err) {
      if (err.status !== 401) showError(err);
      return;
    }
    let saved = null;
    try { saved = sessionStorage.getItem("desk.lang"); } catch (err) { saved = null; }
    state.lang = I18N[saved] ? saved : (I18N[state.me.ui_language] ? state.me.ui_language : "nl");
    applyI18n();
    renderDecideFields();
    await Promise.all([refreshQueue(), refreshCallbacks(), refreshPromises(), refreshReachOut(), refreshFollowUps()]);
    const wanted = new URLSearchParams(window.location.hash.slice(1)).get("c");
    if (wanted) openConversation(wanted);
    connectEvents();
    document.body.dataset.ready = "1";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
