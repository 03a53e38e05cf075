/**
 * pairline-client.js — the browser side of the pairline protocol (v1) as one ES module.
 *
 * No dependencies, no build step: import it from any front end (plain, React, Vue, …).
 * It logs in as a guest, keeps one session alive across drops and page reloads (acks, pongs,
 * reconnect with backoff, resume), runs the commands, and handles the call's media itself
 * (peer-to-peer WebRTC, or LiveKit loaded on demand). docs/web-client.md is the guide.
 *
 *   const client = new PairlineClient({ server: location.origin });
 *   client.on("state", ({ state }) => render(state));           // events in
 *   client.on("remotestream", ({ stream }) => (video.srcObject = stream));
 *   client.setLocalStream((await openLocalMedia()).stream);     // media handled
 *   await client.join({ interests: ["music"] });                // commands out
 *
 * Events (listen with `client.on(type, fn)`, or addEventListener: the payload is `event.detail`):
 *   connection    {status, code, attempt, delayMs}  status: "disconnected" | "connecting" |
 *                 "connected" | "reconnecting" | "offline" | "replaced" | "banned" | "failed"
 *   state         {state, previous, cause}   the §4 snapshot after every change
 *   welcome, and every server message by its `type` (queue, matched, match_confirmed,
 *                 match_cancelled, partner_left, partner_reconnecting, partner_resumed,
 *                 queue_cancelled, chat, signal, error): the message, plus `replayed`
 *   remotestream  {stream}                   the partner's MediaStream, or null
 *   mediastate    {state}                    "connecting" | "connected" | "disconnected" |
 *                                            "failed" | "closed"
 *   partnermedia  {audio, video}             what the partner says it sends (mute, camera off)
 */

const PROTOCOL_VERSION = 1;
const DEFAULT_BACKOFF_MS = [1000, 2000, 4000];
const JITTER = 0.2;
// Close codes after which reconnecting on our own cannot help (protocol.md §2).
const STOP_CODES = { 4400: "failed", 4401: "failed", 4403: "banned", 4409: "replaced" };
const MAX_MEDIA_RESTARTS = 3;

/** A command's `error` answer, or a failure to reach the server. */
export class PairlineError extends Error {
  constructor(code, message, { retryAfterMs = null, re = null, closeCode = null } = {}) {
    super(message || code);
    this.name = "PairlineError";
    this.code = code;
    this.retryAfterMs = retryAfterMs;
    this.re = re;
    this.closeCode = closeCode;
  }
}

export function idleState() {
  return { status: "idle", position: null, eta_ms: null, match: null, cooldown_ms: null };
}

// ---- the state snapshot between two authoritative copies (mirrors client/state.py) ----------

const queued = (s, position, eta) => ({ ...s, status: "queued", position, eta_ms: eta, match: null });
const idle = (s) => ({ ...s, status: "idle", position: null, eta_ms: null, match: null });
const matchIdOf = (s) => s?.match?.match_id ?? null;

function applyEvent(state, msg) {
  switch (msg.type) {
    case "queue":
      return queued(state, msg.position, msg.eta_ms);
    case "matched":
      return {
        ...state, status: "proposed", position: null, eta_ms: null,
        match: { match_id: msg.match_id, partner: msg.partner ?? null, media: null },
      };
    case "match_confirmed":
      if (msg.match_id !== matchIdOf(state)) return state;
      return { ...state, status: "in_call", match: { ...state.match, media: msg.media } };
    case "match_cancelled":
    case "partner_left":
      if (msg.match_id !== matchIdOf(state)) {
        // A proposal we never saw (still in its health check): it only confirms our place.
        return msg.type === "match_cancelled" && msg.requeued && state.status === "queued"
          ? queued(state, msg.position ?? state.position, state.eta_ms)
          : state;
      }
      return msg.requeued ? queued(state, msg.position, state.eta_ms) : idle(state);
    case "queue_cancelled":
      return state.status === "queued" ? idle(state) : state;
    default:
      return state;
  }
}

function applyReply(state, sent, reply) {
  const endsCall = ["skip", "end", "block", "report"].includes(sent.type);
  const current = matchIdOf(state);
  if (endsCall && current !== null && current !== sent.match_id) return state; // late: a newer call goes on
  switch (sent.type) {
    case "join":
      return queued(state, reply.position ?? null, reply.eta_ms ?? null);
    case "leave":
      return idle(state);
    case "skip": {
      const cooldown = reply.cooldown_ms ?? state.cooldown_ms;
      const next = reply.requeued === false ? idle(state) : queued(state, reply.position ?? null, reply.eta_ms ?? null);
      return { ...next, cooldown_ms: cooldown };
    }
    default:
      return endsCall ? idle(state) : state;
  }
}

// ---- small helpers ------------------------------------------------------------------------

const randomId = (bytes = 6) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");

/** One reconnect schedule: each delay scaled by a random factor in [1-jitter, 1+jitter], so
 * clients dropped together (a node restart) do not all come back in the same instant. */
export function jittered(delays, jitter = JITTER) {
  return delays.map((d) => d * (1 - jitter + Math.random() * 2 * jitter));
}

/**
 * Ask for the camera and microphone. Never throws: returns {stream, error} where error is
 * null, "denied" (permission refused), "no-camera" (stream is audio only), "no-devices",
 * "busy" (another app holds the camera) or "unsupported" (no getUserMedia: not a secure page).
 */
export async function openLocalMedia({ audioDeviceId = null, videoDeviceId = null } = {}) {
  const md = globalThis.navigator?.mediaDevices;
  if (!md?.getUserMedia) return { stream: null, error: "unsupported" };
  const audio = audioDeviceId ? { deviceId: { exact: audioDeviceId } } : true;
  const video = {
    width: { ideal: 1280 }, height: { ideal: 720 },
    ...(videoDeviceId ? { deviceId: { exact: videoDeviceId } } : {}),
  };
  try {
    return { stream: await md.getUserMedia({ audio, video }), error: null };
  } catch (err) {
    if (err?.name === "NotAllowedError" || err?.name === "SecurityError") return { stream: null, error: "denied" };
    if (err?.name === "NotReadableError") return { stream: null, error: "busy" };
    if (err?.name !== "NotFoundError" && err?.name !== "OverconstrainedError") return { stream: null, error: "no-devices" };
  }
  try {
    return { stream: await md.getUserMedia({ audio }), error: "no-camera" };
  } catch (err) {
    return { stream: null, error: err?.name === "NotAllowedError" ? "denied" : "no-devices" };
  }
}

/** The cameras and microphones, for device pickers (labels only once permission is given). */
export async function listDevices() {
  const md = globalThis.navigator?.mediaDevices;
  const all = md?.enumerateDevices ? await md.enumerateDevices() : [];
  return {
    cameras: all.filter((d) => d.kind === "videoinput" && d.deviceId),
    microphones: all.filter((d) => d.kind === "audioinput" && d.deviceId),
  };
}

// ---- the client ---------------------------------------------------------------------------

export class PairlineClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} [options.server]       the pairline server's base URL (default: this page's origin)
   * @param {string} [options.token]        the operator's own user token (JWT); default: a guest login
   * @param {string} [options.displayName]  the guest's display name (default: "Stranger")
   * @param {Storage|null} [options.storage] where the token, session and last seq survive a
   *   reload (default sessionStorage: one user per tab; null keeps nothing)
   * @param {string} [options.storageKey]   key prefix in that storage (default "pairline")
   * @param {number[]} [options.backoffMs]  reconnect delays before giving up (default 1, 2, 4 s)
   * @param {number} [options.pingTimeoutMs] no ping for this long: the link is dead (default 30 s)
   * @param {number} [options.connectTimeoutMs] no welcome this long after connecting: try again (10 s)
   * @param {boolean} [options.media]       false: only signalling; handle `signal` yourself
   * @param {string} [options.livekitModule] URL of livekit-client's ES module (default: the vendored copy)
   */
  constructor(options = {}) {
    super();
    this.server = new URL(options.server ?? globalThis.location.origin);
    this.displayName = options.displayName ?? null;
    this.storage = options.storage === undefined ? globalThis.sessionStorage ?? null : options.storage;
    this.storageKey = options.storageKey ?? "pairline";
    this.backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 30000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10000;
    this.handleMedia = options.media !== false;
    this.livekitModule = options.livekitModule ?? new URL("./vendor/livekit-client.esm.mjs", import.meta.url).href;

    this._ownToken = options.token ?? null;
    this._token = this._ownToken ?? this._load("token");
    this._session = this._load("session");
    this._lastSeq = Number(this._load("seq") ?? 0) || 0;
    this._userId = this._load("user");
    this._state = idleState();
    this._connection = "disconnected";
    this._ws = null;
    this._gen = 0; // connection generation: which commands were sent on the live socket
    this._replayUntil = 0;
    this._replaying = false;
    this._heartbeatMs = 0;
    this._watchdog = null;
    this._closing = false;
    this._reconnecting = null;
    this._wake = null;
    this._pending = new Map(); // command id → {message, resolve, reject, gen}
    this._outbox = []; // chat/signal/media_lost written while no socket was open
    this._idPrefix = randomId(3); // per tab: a reloaded page resumes the session with new ids
    this._nextId = 1;
    this._lastMatchId = null;
    this._cooldownUntil = 0;
    this._localStream = null;
    this._media = null;
    this._remoteStream = null;
    this._micOn = true;
    this._cameraOn = true;
    this._partnerMedia = { audio: true, video: true };
    this._onOnline = () => this._connection === "offline" && this.reconnect();
    globalThis.addEventListener?.("online", this._onOnline);
  }

  // ---- read-only views --------------------------------------------------------------------

  /** The §4 snapshot: {status, position, eta_ms, match, cooldown_ms}. */
  get state() { return this._state; }
  get connection() { return this._connection; }
  get userId() { return this._userId; }
  get session() { return this._session; }
  get matchId() { return matchIdOf(this._state); }
  get partner() { return this._state.match?.partner ?? null; }
  get localStream() { return this._localStream; }
  get remoteStream() { return this._remoteStream; }
  get partnerMedia() { return this._partnerMedia; }
  get micEnabled() { return this._micOn; }
  get cameraEnabled() { return this._cameraOn; }
  /** Whether a stored session exists (a reload in progress): connect at once to resume it. */
  get hasSession() { return Boolean(this._token && this._session); }
  /** Milliseconds of skip cool-down left (0: none). */
  get cooldownRemainingMs() { return Math.max(0, this._cooldownUntil - Date.now()); }

  /** Subscribe to an event's payload; returns the unsubscribe function. */
  on(type, fn) {
    const listener = (event) => fn(event.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /** Log in as a guest if needed, connect (resuming a stored session) and return the welcome. */
  async connect() {
    this._closing = false;
    globalThis.addEventListener?.("online", this._onOnline); // again after a close(); no duplicate
    if (this._connection === "connected") return this._welcome;
    this._setConnection("connecting");
    try {
      return await this._openFresh();
    } catch (err) {
      if (err instanceof PairlineError && STOP_CODES[err.closeCode]) {
        this._setConnection(STOP_CODES[err.closeCode], { code: err.closeCode });
      } else {
        this._setConnection("offline", { code: err.closeCode ?? null });
      }
      throw err;
    }
  }

  /** Reconnect now: after giving up ("offline"), or to cut a backoff wait short. */
  reconnect() {
    this._closing = false;
    if (this._wake) return this._wake();
    if (!this._ws && !this._reconnecting) this._reconnectLoop(null, true);
  }

  /** After 4409 (this session went to another tab): take it back here. */
  takeOver() {
    if (this._connection === "replaced") this.reconnect();
  }

  /** Close for good (code 1000) and stop the media; the session's resume window starts. */
  close() {
    this._closing = true;
    this._wake?.();
    this._stopMedia();
    this._clearWatchdog();
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(1000);
    this._failPending(new PairlineError("closed", "the client was closed"));
    globalThis.removeEventListener?.("online", this._onOnline);
    this._setConnection("disconnected");
  }

  /** Forget the stored token and session: the next connect() is a new guest user. */
  forget() {
    for (const key of ["token", "session", "seq", "user"]) this._store(key, null);
    this._token = this._ownToken;
    this._session = this._userId = null;
    this._lastSeq = 0;
  }

  /** Replace the local state with the server's snapshot (GET /v1/status). */
  async refreshState() {
    const response = await fetch(new URL("/v1/status", this.server), {
      headers: { authorization: `Bearer ${this._token}` },
    });
    if (!response.ok) throw new PairlineError("unauthorized", `status answered ${response.status}`);
    const snapshot = await response.json();
    this._setState(snapshot, "status", true);
    return snapshot;
  }

  // ---- commands (each returns the reply's fields, or rejects with PairlineError) -------------

  join({ interests = [], lang = null } = {}) {
    const fields = {};
    if (interests?.length) fields.interests = interests;
    if (lang) fields.lang = lang;
    return this.command("join", fields);
  }
  leave() { return this.command("leave"); }
  skip(matchId) { return this.command("skip", this._matchField(matchId)); }
  end(matchId) { return this.command("end", this._matchField(matchId)); }
  block(matchId) { return this.command("block", this._matchField(matchId)); }
  report(reason, details = "", matchId) {
    return this.command("report", { reason, details, ...this._matchField(matchId) });
  }

  /** Any command by type; kept across reconnects and re-sent under the same id (no second effect). */
  command(type, fields = {}) {
    if (["banned", "replaced", "failed"].includes(this._connection)) {
      return Promise.reject(new PairlineError(this._connection, `cannot send ${type}: ${this._connection}`));
    }
    const id = `${this._idPrefix}-${this._nextId++}`;
    const message = { type, id, ...fields };
    return new Promise((resolve, reject) => {
      const pending = { message, resolve, reject, gen: 0 };
      this._pending.set(id, pending);
      if (this._live() && !this._replaying) {
        this._sendNow(message);
        pending.gen = this._gen;
      }
    });
  }

  // ---- messages without replies ------------------------------------------------------------

  /** Send a chat line to the partner (≤ 2,000 characters). */
  chat(text) { this._send({ type: "chat", text, ...this._matchField() }); }
  /** Relay any JSON to the partner (≤ 16 KiB); the built-in media uses this for WebRTC. */
  signal(data, matchId) { this._send({ type: "signal", data, ...this._matchField(matchId) }); }
  /** Our media link to the partner failed: the server checks the partner at once. */
  mediaLost(matchId) { this._send({ type: "media_lost", ...this._matchField(matchId) }); }

  // ---- media --------------------------------------------------------------------------------

  /** The camera/microphone stream to send (null: send nothing, still receive). Safe mid-call. */
  setLocalStream(stream) {
    this._localStream = stream ?? null;
    this._applyTrackToggles();
    this._media?.setLocalStream(this._localStream);
    this._announceMedia();
  }

  /** Mute or unmute the microphone (the partner is told, to show it). */
  setMicEnabled(on) {
    this._micOn = Boolean(on);
    this._applyTrackToggles();
    this._announceMedia();
  }

  /** Turn the camera on or off (off sends no picture; the partner is told). */
  setCameraEnabled(on) {
    this._cameraOn = Boolean(on);
    this._applyTrackToggles();
    this._announceMedia();
  }

  // ---- internals: connection ------------------------------------------------------------------

  async _openFresh() {
    if (!this._token) await this._login();
    try {
      return await this._open();
    } catch (err) {
      // An operator's token that is refused cannot be renewed here: the caller must.
      if (err.closeCode !== 4401 || this._ownToken) throw err;
      // A guest token no longer accepted (expired, or the server's key changed): a new guest.
      this.forget();
      await this._login();
      return await this._open();
    }
  }

  async _login() {
    let response;
    try {
      response = await fetch(new URL("/v1/auth/guest", this.server), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(this.displayName ? { display_name: this.displayName } : {}),
      });
    } catch (err) {
      throw new PairlineError("unreachable", `cannot reach the server: ${err.message}`);
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new PairlineError(body.code ?? "unauthorized", body.message ?? `guest login answered ${response.status}`, {
        retryAfterMs: body.retry_after_ms ?? null,
      });
    }
    this._token = body.token;
    this._userId = body.user_id;
    this._session = null;
    this._lastSeq = 0;
    this._store("token", this._token);
    this._store("user", this._userId);
    this._store("session", null);
    this._store("seq", null);
  }

  _wsUrl() {
    const url = new URL("/v1/ws", this.server);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  /** Open a socket, say hello (resuming our session if we have one), and wait for welcome. */
  _open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this._wsUrl());
      let welcomed = false;
      const fail = (error) => {
        clearTimeout(timer);
        if (!welcomed) reject(error);
      };
      const timer = setTimeout(() => {
        ws.onclose = null;
        ws.close();
        fail(new PairlineError("timeout", "no welcome from the server"));
      }, this.connectTimeoutMs);
      ws.onopen = () => {
        const hello = { type: "hello", v: PROTOCOL_VERSION, token: this._token, last_seq: this._lastSeq };
        if (this._session) hello.resume = this._session;
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = (event) => {
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!msg || typeof msg.type !== "string") return;
        if (welcomed) return this._handle(ws, msg);
        // Before welcome only an error for a bad hello can come; its close code follows.
        if (msg.type === "welcome") {
          welcomed = true;
          clearTimeout(timer);
          this._install(ws, msg);
          resolve(msg);
        }
      };
      ws.onclose = (event) => {
        if (!welcomed) return fail(new PairlineError("closed", `closed with ${event.code} before welcome`, { closeCode: event.code }));
        if (this._ws === ws) this._dropped(event.code);
      };
    });
  }

  _install(ws, welcome) {
    if (welcome.session !== this._session) {
      // A fresh session (first connect, or the old one expired): its stream starts here.
      this._session = welcome.session;
      this._lastSeq = welcome.last_seq ?? 0;
      this._store("session", this._session);
      this._store("seq", String(this._lastSeq));
    }
    this._userId = welcome.user_id;
    this._store("user", this._userId);
    this._replayUntil = welcome.last_seq ?? 0;
    this._replaying = this._lastSeq < this._replayUntil;
    this._heartbeatMs = welcome.heartbeat_ms ?? 0;
    this._ws = ws;
    this._gen += 1;
    this._welcome = welcome;
    this._armWatchdog();
    this._setConnection("connected");
    // The snapshot already includes what the replay that follows will tell.
    this._setState(welcome.state ?? idleState(), "welcome", true);
    this._emit("welcome", welcome);
    if (!this._replaying) this._flush();
  }

  _dropped(code) {
    this._ws = null;
    this._clearWatchdog();
    if (this._closing) return;
    if (STOP_CODES[code]) {
      this._failPending(new PairlineError(STOP_CODES[code], `the server closed the connection (${code})`, { closeCode: code }));
      this._setConnection(STOP_CODES[code], { code });
      if (code === 4403) this._stopMedia();
      return;
    }
    this._reconnectLoop(code, false);
  }

  async _reconnectLoop(code, immediate) {
    if (this._reconnecting) return;
    this._reconnecting = true;
    try {
      // A flood close (4429) asks us to come back slowly.
      const base = code === 4429 ? this.backoffMs.map((d) => d * 4) : this.backoffMs;
      const delays = [...(immediate ? [0] : []), ...jittered(base)];
      for (let attempt = 1; attempt <= delays.length; attempt++) {
        this._setConnection("reconnecting", { code, attempt, attempts: delays.length, delayMs: delays[attempt - 1] });
        await this._sleep(delays[attempt - 1]);
        if (this._closing) return;
        try {
          await this._openFresh();
          return;
        } catch (err) {
          if (STOP_CODES[err.closeCode]) {
            this._setConnection(STOP_CODES[err.closeCode], { code: err.closeCode });
            return;
          }
        }
      }
      this._failPending(new PairlineError("offline", "could not reconnect to the server"));
      this._setConnection("offline", { code });
    } finally {
      this._reconnecting = false;
    }
  }

  _sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this._wake = () => {
        this._wake = null;
        done();
      };
    }).finally(() => (this._wake = null));
  }

  _armWatchdog() {
    this._clearWatchdog();
    // Never below two server ping intervals, so a server that pings rarely does not make us flap.
    const limit = Math.max(this.pingTimeoutMs, 2 * this._heartbeatMs);
    this._watchdog = setTimeout(() => {
      const ws = this._ws;
      if (!ws) return;
      ws.onclose = null; // the close handshake of a dead link can take long: do not wait for it
      ws.close();
      this._dropped(1006);
    }, limit);
  }

  _clearWatchdog() {
    clearTimeout(this._watchdog);
    this._watchdog = null;
  }

  _live() {
    return this._ws !== null && this._ws.readyState === WebSocket.OPEN;
  }

  _sendNow(message) {
    this._ws.send(JSON.stringify(message));
  }

  _send(message) {
    if (this._live() && !this._replaying) this._sendNow(message);
    else this._outbox.push(message);
  }

  /** After (re)connecting and any replay: send unanswered commands and held messages. */
  _flush() {
    for (const pending of this._pending.values()) {
      if (pending.gen !== this._gen) {
        this._sendNow(pending.message);
        pending.gen = this._gen;
      }
    }
    const held = this._outbox.splice(0);
    for (const message of held) this._sendNow(message);
  }

  _failPending(error) {
    for (const pending of this._pending.values()) pending.reject(error);
    this._pending.clear();
  }

  // ---- internals: messages ------------------------------------------------------------------

  _handle(ws, msg) {
    const seq = Number.isInteger(msg.seq) ? msg.seq : 0;
    if (seq > 0 && seq <= this._lastSeq) return; // already processed (replay overlap)
    const replayed = seq > 0 && seq <= this._replayUntil;
    if (msg.type === "ping") {
      this._armWatchdog();
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "pong", nonce: msg.nonce }));
    }
    try {
      this._process(msg, replayed);
    } catch (err) {
      console.error("pairline: failed to process", msg.type, err);
    }
    if (seq <= 0) return;
    this._lastSeq = seq;
    this._store("seq", String(seq));
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ack", seq }));
    if (this._replaying && seq >= this._replayUntil) {
      // Answers to commands sent before the drop came with the replay; the rest may never
      // have reached the server.
      this._replaying = false;
      this._flush();
    }
  }

  _process(msg, replayed) {
    if ((msg.type === "reply" || msg.type === "error") && msg.re != null && this._pending.has(msg.re)) {
      return this._answer(msg, replayed);
    }
    if (msg.type === "matched") {
      this._lastMatchId = msg.match_id;
      this._partnerMedia = { audio: true, video: true };
    }
    if (msg.type === "error") this._noteError(msg);
    if (msg.type === "signal" && msg.match_id === this.matchId) this._media?.onSignal(msg.data ?? {});
    if (!replayed) this._setState(applyEvent(this._state, msg), msg.type);
    this._emit(msg.type, { ...msg, replayed });
  }

  _answer(msg, replayed) {
    const pending = this._pending.get(msg.re);
    this._pending.delete(msg.re);
    if (msg.type === "reply") {
      const { type, re, seq, ...payload } = msg;
      if (!replayed) {
        if (payload.cooldown_ms) this._cooldownUntil = Date.now() + payload.cooldown_ms;
        this._setState(applyReply(this._state, pending.message, payload), pending.message.type);
      }
      pending.resolve(payload);
      return;
    }
    this._noteError(msg);
    pending.reject(new PairlineError(msg.code, msg.message, { retryAfterMs: msg.retry_after_ms ?? null, re: msg.re }));
    // A command that did not fit our state: our picture of it is wrong, so resync.
    if (msg.code === "invalid_state" || msg.code === "not_found") this.refreshState().catch(() => {});
  }

  _noteError(msg) {
    if (msg.code === "cooldown" && msg.retry_after_ms) {
      this._cooldownUntil = Date.now() + msg.retry_after_ms;
      this._emit("state", { state: this._state, previous: this._state, cause: "cooldown" });
    }
  }

  _setState(next, cause, authoritative = false) {
    const previous = this._state;
    this._state = next;
    if (authoritative) this._cooldownUntil = next.cooldown_ms ? Date.now() + next.cooldown_ms : 0;
    const id = matchIdOf(next);
    if (id) this._lastMatchId = id;
    this._emit("state", { state: next, previous, cause });
    this._syncMedia(cause);
  }

  _setConnection(status, extra = {}) {
    this._connection = status;
    this._emit("connection", { status, code: null, attempt: 0, delayMs: 0, ...extra });
  }

  _matchField(matchId) {
    // Default to the current match, else the most recent one: a late skip/end names the call
    // that just ended (protocol.md §5).
    const chosen = matchId ?? this.matchId ?? this._lastMatchId;
    return chosen ? { match_id: chosen } : {};
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _load(key) {
    try {
      return this.storage?.getItem(`${this.storageKey}.${key}`) ?? null;
    } catch {
      return null; // storage can be off (privacy modes): live without it
    }
  }

  _store(key, value) {
    try {
      if (value == null) this.storage?.removeItem(`${this.storageKey}.${key}`);
      else this.storage?.setItem(`${this.storageKey}.${key}`, value);
    } catch {
      // see _load
    }
  }

  // ---- internals: media ---------------------------------------------------------------------

  /** Start the media of the call we are in, stop that of a call we left. */
  _syncMedia(cause) {
    const s = this._state;
    const wanted = s.status === "in_call" && s.match?.media ? s.match.match_id : null;
    if (this._media && this._media.matchId !== wanted) this._stopMedia();
    if (!wanted || this._media || !this.handleMedia) return;
    const media = s.match.media;
    const Link = media.kind === "livekit" ? LiveKitLink : media.kind === "p2p" ? PeerLink : null;
    if (!Link) return console.warn("pairline: unknown media kind", media.kind);
    // From a snapshot (reload, resume after a long drop) the partner may hold a link to a page
    // that is gone: ask for a fresh one. From match_confirmed both sides start fresh anyway.
    const resumed = cause === "welcome" || cause === "status";
    this._media = new Link(this, wanted, media, resumed);
    this._media.start();
    this._announceMedia();
  }

  _stopMedia() {
    if (!this._media) return;
    this._media.close();
    this._media = null;
    this._setRemoteStream(null);
    this._emit("mediastate", { state: "closed" });
  }

  _setRemoteStream(stream) {
    if (this._remoteStream === stream) return;
    this._remoteStream = stream;
    this._emit("remotestream", { stream });
  }

  _applyTrackToggles() {
    for (const track of this._localStream?.getAudioTracks() ?? []) track.enabled = this._micOn;
    for (const track of this._localStream?.getVideoTracks() ?? []) track.enabled = this._cameraOn;
  }

  /** Tell the partner what we send, so its page can say "muted" or "camera off". */
  _announceMedia() {
    if (!this._media) return;
    const has = (kind) => (this._localStream?.getTracks() ?? []).some((t) => t.kind === kind && t.readyState === "live");
    this.signal({ type: "media", audio: has("audio") && this._micOn, video: has("video") && this._cameraOn });
  }

  _onPartnerMedia(data) {
    this._partnerMedia = { audio: data.audio !== false, video: data.video !== false };
    this._emit("partnermedia", this._partnerMedia);
  }
}

// ---- peer-to-peer WebRTC --------------------------------------------------------------------

/**
 * One call's RTCPeerConnection. The offerer (named by the server) makes the offer; each offer
 * carries a tag (`pc`) that its answer and both sides' ICE candidates repeat, so messages for a
 * connection that was replaced (a reload, a restart) are told apart and dropped.
 *
 * Signals (in `signal.data`): {type:"offer"|"answer", pc, sdp}, {type:"ice", pc, candidate},
 * {type:"restart"} (answerer → offerer: "make a new connection"), {type:"media", audio, video}.
 */
class PeerLink {
  constructor(client, matchId, media, resumed) {
    this.client = client;
    this.matchId = matchId;
    this.offerer = media.role === "offerer";
    this.iceServers = media.ice_servers ?? [];
    this.resumed = resumed;
    this.pc = null;
    this.tag = null;
    this.pendingIce = [];
    this.restarts = 0;
    this.closed = false;
    this.chain = Promise.resolve(); // signals are handled one at a time, in order
  }

  start() {
    if (this.offerer) this._run(() => this._offer());
    else if (this.resumed) this._signal({ type: "restart" });
    this.client._emit("mediastate", { state: "connecting" });
  }

  onSignal(data) {
    if (data.type === "media") return this.client._onPartnerMedia(data);
    this._run(() => this._handle(data));
  }

  setLocalStream(stream) {
    this._run(() => this._attachTracks(stream));
  }

  close() {
    this.closed = true;
    this._closePeer();
  }

  _run(task) {
    this.chain = this.chain.then(() => (this.closed ? null : task())).catch((err) => console.warn("pairline media:", err));
  }

  _signal(data) {
    this.client.signal(data, this.matchId);
  }

  async _handle(data) {
    if (data.type === "restart" && this.offerer) return this._offer();
    if (data.type === "offer" && !this.offerer) return this._answer(data);
    if (data.type === "answer" && this.offerer && data.pc === this.tag && this.pc?.signalingState === "have-local-offer") {
      await this.pc.setRemoteDescription({ type: "answer", sdp: data.sdp });
      return this._drainIce();
    }
    if (data.type === "ice" && data.pc === this.tag && data.candidate) {
      if (this.pc?.remoteDescription) await this._addIce(data.candidate);
      else this.pendingIce.push(data.candidate);
    }
  }

  async _offer() {
    this._newPeer(randomId());
    const local = this.client.localStream;
    for (const kind of ["audio", "video"]) {
      const track = local?.getTracks().find((t) => t.kind === kind) ?? null;
      // Always both kinds, send and receive: a camera plugged in later is a replaceTrack away.
      this.pc.addTransceiver(track ?? kind, { direction: "sendrecv", streams: local ? [local] : [] });
    }
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this._signal({ type: "offer", pc: this.tag, sdp: this.pc.localDescription.sdp });
  }

  async _answer(data) {
    if (data.pc !== this.tag || this.pc?.remoteDescription) this._newPeer(data.pc);
    await this.pc.setRemoteDescription({ type: "offer", sdp: data.sdp });
    for (const transceiver of this.pc.getTransceivers()) transceiver.direction = "sendrecv";
    await this._attachTracks(this.client.localStream);
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this._signal({ type: "answer", pc: this.tag, sdp: this.pc.localDescription.sdp });
    await this._drainIce();
  }

  async _attachTracks(stream) {
    for (const transceiver of this.pc?.getTransceivers() ?? []) {
      const kind = transceiver.receiver.track.kind;
      const track = stream?.getTracks().find((t) => t.kind === kind) ?? null;
      if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
      if (stream) transceiver.sender.setStreams?.(stream);
    }
  }

  async _drainIce() {
    for (const candidate of this.pendingIce.splice(0)) await this._addIce(candidate);
  }

  async _addIce(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      console.debug("pairline: ICE candidate refused", err); // one for an older connection
    }
  }

  _newPeer(tag) {
    this._closePeer();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const remote = new MediaStream();
    this.pc = pc;
    this.tag = tag;
    this.pendingIce = [];
    pc.ontrack = (event) => {
      if (this.pc !== pc) return;
      remote.addTrack(event.track);
      this.client._setRemoteStream(remote);
    };
    pc.onicecandidate = (event) => {
      if (this.pc === pc && event.candidate) this._signal({ type: "ice", pc: tag, candidate: event.candidate.toJSON() });
    };
    pc.onconnectionstatechange = () => this._stateChanged(pc);
    this.client._setRemoteStream(null);
    this.client._emit("mediastate", { state: "connecting" });
  }

  _stateChanged(pc) {
    if (this.pc !== pc || this.closed) return;
    const state = pc.connectionState;
    this.client._emit("mediastate", { state });
    if (state === "connected") {
      this.restarts = 0;
      this.client._announceMedia();
    }
    if (state !== "failed") return;
    // The server checks the partner now and ends the call if it is gone; if it answers, try a
    // new connection (a few times: a network that blocks media will not heal by itself).
    this.client.mediaLost(this.matchId);
    if (++this.restarts > MAX_MEDIA_RESTARTS) return;
    if (this.offerer) this._run(() => this._offer());
    else this._signal({ type: "restart" });
  }

  _closePeer() {
    if (!this.pc) return;
    const pc = this.pc;
    this.pc = null;
    pc.ontrack = pc.onicecandidate = pc.onconnectionstatechange = null;
    pc.close();
  }
}

// ---- LiveKit ---------------------------------------------------------------------------------

/** One call's LiveKit room (two seats), with livekit-client loaded only when a match needs it. */
class LiveKitLink {
  constructor(client, matchId, media) {
    this.client = client;
    this.matchId = matchId;
    this.media = media;
    this.room = null;
    this.published = [];
    this.closed = false;
  }

  start() {
    this._connect().catch((err) => {
      console.warn("pairline: LiveKit failed", err);
      if (this.closed) return;
      this.client._emit("mediastate", { state: "failed" });
      this.client.mediaLost(this.matchId);
    });
  }

  onSignal(data) {
    if (data.type === "media") this.client._onPartnerMedia(data);
  }

  async _connect() {
    this.client._emit("mediastate", { state: "connecting" });
    const lk = await import(this.client.livekitModule);
    if (this.closed) return;
    const room = new lk.Room({ adaptiveStream: true, dynacast: true });
    const remote = new MediaStream();
    this.room = room;
    room.on(lk.RoomEvent.TrackSubscribed, (track) => {
      remote.addTrack(track.mediaStreamTrack);
      this.client._setRemoteStream(null); // re-announce: some players only read tracks on assignment
      this.client._setRemoteStream(remote);
    });
    room.on(lk.RoomEvent.TrackUnsubscribed, (track) => remote.removeTrack(track.mediaStreamTrack));
    room.on(lk.RoomEvent.ConnectionStateChanged, (state) => {
      const mapped = { connected: "connected", reconnecting: "disconnected", disconnected: "closed" }[state];
      if (mapped && !this.closed) this.client._emit("mediastate", { state: mapped });
    });
    const lost = () => !this.closed && this.client.mediaLost(this.matchId);
    room.on(lk.RoomEvent.ParticipantDisconnected, lost);
    room.on(lk.RoomEvent.Disconnected, lost);
    await room.connect(this.media.url, this.media.token);
    if (this.closed) return room.disconnect();
    await this._publish(this.client.localStream);
    this.client._announceMedia();
  }

  setLocalStream(stream) {
    this._publish(stream).catch((err) => console.warn("pairline: LiveKit publish failed", err));
  }

  async _publish(stream) {
    const participant = this.room?.localParticipant;
    if (!participant || this.closed) return;
    for (const track of this.published.splice(0)) await participant.unpublishTrack(track, false);
    for (const track of stream?.getTracks() ?? []) {
      await participant.publishTrack(track);
      this.published.push(track);
    }
  }

  close() {
    this.closed = true;
    this.room?.disconnect();
    this.room = null;
  }
}
