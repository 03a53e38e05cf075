// The page: everything a stranger sees, built on pairline-client.js (which does the protocol
// and the media). One render() turns the client's state plus a few page flags into the DOM.

import { PairlineClient, listDevices, openLocalMedia } from "./pairline-client.js";

const $ = (id) => document.getElementById(id);
const ui = {
  conn: $("conn"), connText: $("conn-text"),
  remoteVideo: $("remote-video"), localVideo: $("local-video"),
  partnerTag: $("partner-tag"), partnerName: $("partner-name"), partnerFlags: $("partner-flags"),
  overlay: $("overlay"), spinner: $("overlay-spinner"), title: $("overlay-title"), text: $("overlay-text"),
  detail: $("overlay-detail"), countdown: $("overlay-countdown"), action: $("overlay-action"), unmute: $("unmute-remote"),
  localNote: $("local-note"), localNoteTitle: $("local-note-title"), localNoteText: $("local-note-text"),
  retryCamera: $("retry-camera"),
  start: $("start"), stop: $("stop"), mic: $("mic"), cam: $("cam"), report: $("report"), block: $("block"),
  interests: $("interests"), lang: $("lang"), cameraSelect: $("camera-select"), micSelect: $("mic-select"),
  chatLog: $("chat-log"), chatForm: $("chat-form"), chatInput: $("chat-input"), chatSend: $("chat-send"),
  reportDialog: $("report-dialog"), reportForm: $("report-form"),
};

const client = new PairlineClient();
const timings = { startedAt: null, videoAt: null };
window.pairline = { client, timings }; // for operators' debugging (and the browser tests)

// Page flags the protocol state does not carry.
const page = {
  intent: sessionStorage.getItem("pairline.page.intent"), // "searching" from Start until Stop
  starting: false, // connecting after Start
  joining: null, // the join on its way, if any
  notice: null, // {title, text}: why we are back in the queue
  partnerAway: false,
  lastPartner: null,
  remotePlaying: false,
  mediaState: null,
  cameraError: null,
  reconnect: { attempt: 0, attempts: 0 },
};

// ---- preferences ---------------------------------------------------------------------------

const PREFS_KEY = "pairline.prefs";

function loadPrefs() {
  try {
    const prefs = JSON.parse(localStorage.getItem(PREFS_KEY) ?? "{}");
    ui.interests.value = prefs.interests ?? "";
    ui.lang.value = prefs.lang ?? "";
    return prefs;
  } catch {
    return {};
  }
}

function savePrefs() {
  const prefs = {
    interests: ui.interests.value, lang: ui.lang.value,
    camera: ui.cameraSelect.value, microphone: ui.micSelect.value,
  };
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
  } catch {
    // storage off: preferences last for this page only
  }
}

function interests() {
  const seen = new Set();
  for (const raw of ui.interests.value.split(",")) {
    const tag = raw.trim().toLowerCase().slice(0, 32);
    if (tag) seen.add(tag);
  }
  return [...seen].slice(0, 10); // the protocol's limits: ≤ 10, each ≤ 32 characters
}

function setIntent(value) {
  page.intent = value;
  if (value) sessionStorage.setItem("pairline.page.intent", value);
  else sessionStorage.removeItem("pairline.page.intent");
}

// ---- camera and microphone -----------------------------------------------------------------

const CAMERA_NOTES = {
  denied: ["Camera blocked", "Allow camera and microphone for this site in your browser, then try again.", true],
  "no-camera": ["No camera found", "Your partner will hear you but not see you.", false],
  "no-devices": ["No camera or microphone", "You can still meet people and chat by text.", true],
  busy: ["Camera in use", "Another app is using your camera. Close it, then try again.", true],
  unsupported: ["Camera unavailable", "Open this page over https to use your camera.", false],
};

async function startCamera() {
  const prefs = loadPrefs();
  const { stream, error } = await openLocalMedia({
    videoDeviceId: ui.cameraSelect.value || prefs.camera || null,
    audioDeviceId: ui.micSelect.value || prefs.microphone || null,
  });
  const old = client.localStream;
  page.cameraError = error;
  ui.localVideo.srcObject = stream;
  client.setLocalStream(stream);
  for (const track of old?.getTracks() ?? []) if (!stream?.getTracks().includes(track)) track.stop();
  await fillDeviceLists(stream);
  render();
}

async function fillDeviceLists(stream) {
  const { cameras, microphones } = await listDevices();
  const using = (kind) => stream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId ?? "";
  fillSelect(ui.cameraSelect, cameras, using("video"), "Default camera", "Camera");
  fillSelect(ui.micSelect, microphones, using("audio"), "Default microphone", "Microphone");
}

function fillSelect(select, devices, current, fallback, noun) {
  select.replaceChildren();
  if (!devices.length) select.append(new Option(fallback, ""));
  devices.forEach((device, i) => select.append(new Option(device.label || `${noun} ${i + 1}`, device.deviceId)));
  if (devices.some((d) => d.deviceId === current)) select.value = current;
}

// ---- commands --------------------------------------------------------------------------------

async function start() {
  setIntent("searching");
  page.notice = null;
  timings.startedAt = performance.now();
  timings.videoAt = null;
  if (client.connection !== "connected") {
    page.starting = true;
    render();
    try {
      await client.connect(); // its welcome's state event joins (maybeJoin)
    } catch (err) {
      setIntent(null);
      if (err.code === "rate_limited") say(`Too many new visitors from your network; try again in a minute.`);
    } finally {
      page.starting = false;
    }
  }
  maybeJoin();
  render();
}

/** Join whenever the user wants to be paired and is idle: after Start, a block, a report, a
 * match that fell through, or a reconnect that found the session gone. */
function maybeJoin() {
  if (page.intent !== "searching" || page.joining) return;
  if (client.connection !== "connected" || client.state.status !== "idle") return;
  if (client.cooldownRemainingMs > 0) return setIntent(null);
  page.joining = client
    .join({ interests: interests(), lang: ui.lang.value || null })
    .catch((err) => {
      // A busy service sheds joins and says when to come back: the page does, by itself.
      if (err.code === "rate_limited" && err.retryAfterMs) setTimeout(maybeJoin, err.retryAfterMs);
      else commandFailed(err);
    })
    .finally(() => {
      page.joining = null;
      render();
    });
}

async function next() {
  if (client.state.status !== "in_call") return;
  setIntent("searching");
  page.notice = null;
  timings.startedAt = performance.now();
  timings.videoAt = null;
  try {
    const reply = await client.skip();
    if (reply.requeued === false) setIntent(null);
    if (reply.cooldown_ms) say("You skipped a lot of people in a row, so you'll need to wait a little.");
  } catch (err) {
    commandFailed(err);
  }
}

async function stop() {
  setIntent(null);
  page.notice = null;
  await page.joining; // a join on its way would put us back in the queue after the leave
  const status = client.state.status;
  try {
    if (status === "in_call") await client.end();
    else if (status === "queued" || status === "proposed") await client.leave();
    say("You stopped. Press Start whenever you want to meet someone.");
  } catch (err) {
    commandFailed(err);
  }
  render();
}

async function block() {
  if (client.state.status !== "in_call") return;
  const name = partnerName();
  setIntent("searching");
  try {
    await client.block();
    page.notice = { title: `You blocked ${name}`, text: "You won't meet them again." };
    say(`You blocked ${name}. You won't be matched with them again.`);
  } catch (err) {
    commandFailed(err);
  }
}

async function report(reason, details) {
  const name = partnerName();
  setIntent("searching");
  try {
    await client.report(reason, details);
    page.notice = { title: "Thanks for reporting", text: `${name} is blocked and our moderators will look at it.` };
    say(`You reported ${name}. They're blocked and our moderators will look at it.`);
  } catch (err) {
    commandFailed(err);
  }
}

function commandFailed(err) {
  switch (err.code) {
    case "cooldown":
      setIntent(null);
      break;
    case "banned":
    case "offline":
    case "closed":
    case "replaced":
      break; // the connection view says it
    case "rate_limited":
      say(`Slow down a little; try again in ${Math.ceil((err.retryAfterMs ?? 1000) / 1000)} s.`);
      break;
    case "invalid_state":
    case "not_found":
      break; // the client resyncs its state by itself
    default:
      say(`Something went wrong (${err.code}). Please try again.`);
  }
  render();
}

// ---- chat log --------------------------------------------------------------------------------

function say(text) {
  addLine("system", text);
}

function addLine(kind, text, who = null) {
  const item = document.createElement("li");
  item.className = `msg ${kind}`;
  if (who) {
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = `${who}: `;
    item.append(label);
  }
  item.append(document.createTextNode(text)); // text only: never markup from a stranger
  ui.chatLog.append(item);
  while (ui.chatLog.children.length > 300) ui.chatLog.firstElementChild.remove();
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function partnerName() {
  return client.partner?.display_name || "Stranger";
}

// ---- client events ---------------------------------------------------------------------------

client.on("connection", ({ status, attempt, attempts }) => {
  if (status === "reconnecting") page.reconnect = { attempt, attempts };
  if (status === "connected") queueMicrotask(maybeJoin);
  if (status === "banned") {
    setIntent(null);
    for (const track of client.localStream?.getTracks() ?? []) track.stop(); // free the camera
  }
  render();
});

client.on("state", ({ state, previous }) => {
  if (state.match?.partner) page.lastPartner = state.match.partner; // still named once it left
  if (state.match?.match_id !== previous.match?.match_id) {
    page.partnerAway = false;
    page.mediaState = null;
  }
  queueMicrotask(maybeJoin);
  render();
});

client.on("matched", () => {
  page.notice = null;
});

client.on("match_confirmed", ({ replayed }) => {
  if (replayed) return;
  const common = client.partner?.common_interests ?? [];
  say(`You're now talking to ${partnerName()}.${common.length ? ` You both like ${common.join(", ")}.` : ""} Say hi!`);
  render();
  // Ready to type, unless the user is busy with another control.
  if (document.activeElement === document.body || document.activeElement === ui.start) ui.chatInput.focus();
});

const LEFT = {
  skipped: "left",
  ended: "left",
  disconnected: "lost their connection",
  timed_out: "lost their connection",
};

client.on("partner_left", ({ reason, requeued }) => {
  const name = page.lastPartner?.display_name || "Stranger";
  const what = LEFT[reason] ?? "left";
  page.partnerAway = false;
  page.notice = { title: `${name} ${what}`, text: requeued ? "Looking for someone new…" : "" };
  say(`${name} ${what}.`);
  if (!requeued && client.cooldownRemainingMs === 0) page.notice.text = "Press Start to meet someone new.";
});

client.on("match_cancelled", ({ reason, requeued, match_id: matchId }) => {
  if (requeued && matchId !== client.matchId && client.state.status === "queued") {
    return; // a proposal we never saw: we simply kept our place
  }
  page.notice = { title: "That match fell through", text: "Looking for someone else…" };
  say(reason === "ack_timeout" && !requeued ? "That match timed out." : "That match fell through.");
});

client.on("partner_reconnecting", () => {
  page.partnerAway = true;
  say(`${partnerName()}'s connection dropped. Waiting for them to come back…`);
  render();
});

client.on("partner_resumed", () => {
  page.partnerAway = false;
  say(`${partnerName()} is back.`);
  render();
});

client.on("queue_cancelled", ({ reason }) => {
  if (reason === "shutdown") say("The server is restarting; you'll be back in line in a moment.");
  if (reason === "connection_timeout") say("Your connection went quiet, so you left the line. Reconnecting…");
});

client.on("chat", ({ text, match_id: matchId }) => {
  if (matchId === client.matchId) addLine("partner", text, partnerName());
});

client.on("error", ({ code, message }) => {
  if (code === "too_large") say("That message was too long to send.");
  else if (code === "rate_limited") say("You're sending messages too fast.");
  else if (code !== "invalid_state" && code !== "not_found") console.warn("pairline:", code, message);
});

client.on("remotestream", ({ stream }) => {
  page.remotePlaying = false;
  ui.remoteVideo.srcObject = stream;
  if (stream) playRemote();
  render();
});

client.on("mediastate", ({ state }) => {
  page.mediaState = state;
  render();
});

client.on("partnermedia", render);

function playRemote() {
  ui.remoteVideo.play().catch(() => {
    // No user gesture yet (a reload mid-call): play muted and offer to unmute.
    ui.remoteVideo.muted = true;
    ui.unmute.hidden = false;
    ui.remoteVideo.play().catch(() => {});
  });
}

for (const type of ["loadeddata", "resize", "playing", "emptied"]) {
  ui.remoteVideo.addEventListener(type, () => {
    const playing = ui.remoteVideo.srcObject !== null && ui.remoteVideo.videoWidth > 0;
    if (playing && timings.videoAt === null && timings.startedAt !== null) timings.videoAt = performance.now();
    if (playing !== page.remotePlaying) {
      page.remotePlaying = playing;
      render();
    }
  });
}

// ---- render ----------------------------------------------------------------------------------

function view() {
  const status = client.state.status;
  switch (client.connection) {
    case "banned":
    case "replaced":
    case "failed":
    case "offline":
      return client.connection;
    case "reconnecting":
      return status === "in_call" ? "call-reconnecting" : "reconnecting";
    case "connecting":
      return "connecting";
  }
  if (page.starting || (page.joining && status === "idle")) return "connecting";
  if (status === "queued") return "queued";
  if (status === "proposed") return "matched";
  if (status === "in_call") {
    if (page.partnerAway) return "partner-reconnecting";
    if (!client.partnerMedia.video && (page.remotePlaying || page.mediaState === "connected")) return "call-novideo";
    if (page.remotePlaying) return "call";
    if (page.mediaState === "failed") return "call-failed";
    return "call-connecting";
  }
  if (client.cooldownRemainingMs > 0) return "cooldown";
  return "idle";
}

function formatEta(ms) {
  if (ms == null) return "";
  if (ms < 60_000) return `about ${Math.max(5, Math.round(ms / 5000) * 5)} s`;
  return `about ${Math.round(ms / 60_000)} min`;
}

function formatCountdown(ms) {
  const total = Math.ceil(ms / 1000);
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

function queueLine() {
  const { position, eta_ms: eta } = client.state;
  const parts = [];
  if (position != null) parts.push(position === 1 ? "You're next in line" : `You're #${position} in line`);
  if (eta != null) parts.push(formatEta(eta));
  return parts.join(" · ") || "Waiting for someone to join…";
}

function overlayFor(v) {
  const name = partnerName();
  const common = client.partner?.common_interests ?? [];
  const likes = common.length ? `You both like ${common.join(", ")}.` : "";
  const { attempt, attempts } = page.reconnect;
  switch (v) {
    case "idle":
      return page.notice ?? { title: "Talk to someone new", text: "Add a few interests if you like, then press Start." };
    case "connecting":
      return { title: "Connecting…", text: "", spinner: true };
    case "queued":
      return page.notice
        ? { title: page.notice.title, text: page.notice.text || "Looking for someone new…", detail: queueLine(), spinner: true }
        : { title: "Looking for someone…", text: queueLine(), spinner: true };
    case "matched":
      return { title: `Connecting to ${name}…`, text: likes || "Say hi when the video starts.", spinner: true };
    case "call-connecting":
      return { title: "Connecting video…", text: likes, spinner: true };
    case "call":
      return null;
    case "call-novideo":
      return { title: `${name}'s camera is off`, text: "You can still talk and chat.", dim: true };
    case "call-failed":
      return { title: "The video connection failed", text: "Press Next to meet someone else.", dim: true };
    case "partner-reconnecting":
      return { title: `${name}'s connection dropped`, text: "Waiting for them to come back…", spinner: true, dim: true };
    case "call-reconnecting":
      return { title: "Reconnecting…", text: "Your connection dropped; the call carries on when it's back.", spinner: true, dim: true };
    case "reconnecting":
      return { title: "Reconnecting…", text: attempts ? `Your connection dropped. Trying again (${attempt} of ${attempts})…` : "", spinner: true };
    case "offline":
      return { title: "You're offline", text: "We couldn't reach the server.", action: "Try again" };
    case "failed":
      return { title: "Something went wrong", text: "Reload the page to start again.", action: "Reload" };
    case "cooldown":
      return { title: "Take a short break", text: "You skipped a lot of people in a row. You can start again in", countdown: true };
    case "banned":
      return { title: "You can't use pairline right now", text: "This account was banned for breaking the rules." };
    case "replaced":
      return { title: "pairline is open in another tab", text: "You can talk to one person at a time.", action: "Use here" };
    default:
      return null;
  }
}

const CONNECTION_TEXT = {
  disconnected: "Ready", connecting: "Connecting…", connected: "Online",
  reconnecting: "Reconnecting…", offline: "Offline", replaced: "Open in another tab",
  banned: "Banned", failed: "Error",
};

let countdownTimer = null;

function render() {
  const v = view();
  const status = client.state.status;
  const inCall = status === "in_call" && client.connection === "connected";
  document.body.dataset.view = v;

  ui.conn.dataset.status = client.connection;
  ui.connText.textContent = CONNECTION_TEXT[client.connection] ?? client.connection;

  const o = overlayFor(v);
  ui.overlay.hidden = !o;
  ui.overlay.classList.toggle("dim", Boolean(o?.dim));
  if (o) {
    setText(ui.title, o.title);
    setText(ui.text, o.text ?? "");
    setText(ui.detail, o.detail ?? "");
    ui.detail.hidden = !o.detail;
    ui.spinner.hidden = !o.spinner;
    ui.action.hidden = !o.action;
    if (o.action) setText(ui.action, o.action);
    ui.countdown.hidden = !o.countdown;
    if (o.countdown) setText(ui.countdown, formatCountdown(client.cooldownRemainingMs));
  }
  if (v === "cooldown" && !countdownTimer) {
    countdownTimer = setInterval(render, 250);
  } else if (v !== "cooldown" && countdownTimer) {
    clearInterval(countdownTimer);
    countdownTimer = null;
  }

  ui.partnerTag.hidden = !(status === "in_call" || status === "proposed");
  setText(ui.partnerName, partnerName());
  setText(ui.partnerFlags, inCall && !client.partnerMedia.audio ? "muted" : "");

  // One primary button: Start when idle, Next while searching or talking.
  const searching = page.intent === "searching" || status !== "idle";
  setText(ui.start, searching && v !== "cooldown" ? "Next" : "Start");
  ui.start.disabled = !(
    (v === "idle" && !page.starting) ||
    (inCall && v !== "call-reconnecting")
  );
  ui.stop.disabled = !(status !== "idle" || page.starting || page.joining) || ["banned", "replaced"].includes(v);
  ui.report.disabled = ui.block.disabled = !inCall;
  ui.chatInput.disabled = ui.chatSend.disabled = !inCall;
  ui.chatInput.placeholder = inCall ? `Message ${partnerName()}` : "Chat opens when you meet someone";
  const busy = status !== "idle" || page.starting;
  ui.interests.disabled = ui.lang.disabled = busy;

  const stream = client.localStream;
  const hasAudio = Boolean(stream?.getAudioTracks().length);
  const hasVideo = Boolean(stream?.getVideoTracks().length);
  ui.mic.disabled = !hasAudio;
  ui.cam.disabled = !hasVideo;
  ui.mic.setAttribute("aria-pressed", String(hasAudio && !client.micEnabled));
  ui.cam.setAttribute("aria-pressed", String(hasVideo && !client.cameraEnabled));
  renderLocalNote(hasVideo);
}

function renderLocalNote(hasVideo) {
  const note = page.cameraError ? CAMERA_NOTES[page.cameraError] : null;
  if (note) {
    setText(ui.localNoteTitle, note[0]);
    setText(ui.localNoteText, note[1]);
    ui.retryCamera.hidden = !note[2];
  } else if (hasVideo && !client.cameraEnabled) {
    setText(ui.localNoteTitle, "Camera off");
    setText(ui.localNoteText, "");
    ui.retryCamera.hidden = true;
  }
  ui.localNote.hidden = !(note || (hasVideo && !client.cameraEnabled));
  ui.localNote.dataset.kind = page.cameraError ?? "off";
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text; // no needless live-region chatter
}

// ---- wiring ------------------------------------------------------------------------------------

ui.start.addEventListener("click", () => (client.state.status === "in_call" ? next() : start()));
ui.stop.addEventListener("click", stop);
ui.block.addEventListener("click", block);
ui.report.addEventListener("click", () => {
  ui.reportForm.reset();
  ui.reportDialog.returnValue = ""; // Escape keeps the last value: never re-send an old report
  ui.reportDialog.showModal();
});
ui.reportDialog.addEventListener("close", () => {
  if (ui.reportDialog.returnValue !== "send") return;
  const data = new FormData(ui.reportForm);
  report(String(data.get("reason") ?? "other"), String(data.get("details") ?? ""));
});
ui.mic.addEventListener("click", () => {
  client.setMicEnabled(!client.micEnabled);
  render();
});
ui.cam.addEventListener("click", () => {
  client.setCameraEnabled(!client.cameraEnabled);
  render();
});
ui.retryCamera.addEventListener("click", startCamera);
ui.unmute.addEventListener("click", () => {
  ui.remoteVideo.muted = false;
  ui.unmute.hidden = true;
  ui.remoteVideo.play().catch(() => {});
});
ui.action.addEventListener("click", () => {
  if (client.connection === "offline") client.hasSession ? client.reconnect() : start();
  else if (client.connection === "replaced") client.takeOver();
  else if (client.connection === "failed") location.reload();
});
ui.chatForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text || client.state.status !== "in_call") return;
  client.chat(text);
  addLine("me", text, "You");
  ui.chatInput.value = "";
});
$("prefs").addEventListener("submit", (event) => {
  event.preventDefault(); // Enter in the interests field means Start
  savePrefs();
  if (!ui.start.disabled && client.state.status === "idle") start();
});
ui.interests.addEventListener("change", savePrefs);
ui.lang.addEventListener("change", savePrefs);
ui.cameraSelect.addEventListener("change", () => {
  savePrefs();
  startCamera();
});
ui.micSelect.addEventListener("change", () => {
  savePrefs();
  startCamera();
});
navigator.mediaDevices?.addEventListener?.("devicechange", () => fillDeviceLists(client.localStream));
document.addEventListener("keydown", (event) => {
  // Escape: next person (the classic random-chat key), unless a dialog is open.
  if (event.key === "Escape" && !ui.reportDialog.open && client.state.status === "in_call") {
    event.preventDefault();
    next();
  }
});

loadPrefs();
render();
startCamera();
if (client.hasSession) {
  // A reload: resume the session at once (the call or the queue place is still ours).
  client.connect().catch(() => {});
}
