// The convstore chat page: sign in, conversations, a streamed chat with its tool steps, and the
// tasks the assistant manages. Preact + htm (vendored), no build step.

import {
  html,
  render,
  useCallback,
  useEffect,
  useRef,
  useState,
} from "./vendor/htm-preact-standalone.mjs";
import * as api from "./api.js";
import { renderMarkdown } from "./markdown.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE_SIZE = 20;
const UNDO_MS = 10000;

function idFromUrl() {
  const id = new URLSearchParams(location.search).get("c");
  return id && UUID.test(id) ? id.toLowerCase() : null;
}

function urlFor(id) {
  return id ? `/?c=${encodeURIComponent(id)}` : "/";
}

function titleOf(conversation) {
  return conversation.title || "New conversation";
}

function errorText(error) {
  if (error instanceof api.ApiError) {
    const fields = (error.problem.errors || []).map((e) => `${e.field}: ${e.message}`);
    return fields.length ? fields.join("; ") : error.message;
  }
  return "The server cannot be reached. Check your connection and try again.";
}

function formatDue(iso) {
  const due = new Date(iso);
  return due.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function json(value) {
  return JSON.stringify(value, null, 2);
}

// ---- the message model ----------------------------------------------------------------------

// A stored message (the API's MessageRead) as the view shows it: its tool calls paired with
// their results.
function fromApi(message) {
  const results = new Map((message.tool_results || []).map((r) => [r.tool_call_id, r]));
  const steps = (message.tool_calls || []).map((call) => {
    const result = results.get(call.id);
    return {
      call_id: call.id,
      name: call.name,
      arguments: call.arguments,
      done: Boolean(result),
      ok: result ? !result.is_error : null,
      result: result && !result.is_error ? result.output : null,
      error: result && result.is_error ? result.output : null,
    };
  });
  const failure = message.status === "error" ? (message.metadata || {}).error || {} : null;
  return {
    key: message.id,
    id: message.id,
    role: message.role,
    content: message.content,
    status: message.status,
    steps,
    error: failure
      ? { detail: failure.detail || "The reply failed.", code: failure.code, action: "retry" }
      : null,
  };
}

// ---- sign in --------------------------------------------------------------------------------

function AuthView() {
  const [mode, setMode] = useState("login");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    setError(null);
    try {
      const email = String(form.get("email") || "");
      const password = String(form.get("password") || "");
      if (mode === "register") await api.register(email, password, String(form.get("name") || ""));
      else await api.login(email, password);
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  }

  const registering = mode === "register";
  return html`
    <main class="auth">
      <form class="auth-card" onSubmit=${submit} aria-labelledby="auth-title">
        <h1 id="auth-title">${registering ? "Create your account" : "Sign in to convstore"}</h1>
        ${registering &&
        html`<label for="auth-name">Name <span class="muted">(optional)</span></label>
          <input id="auth-name" name="name" autocomplete="name" maxlength="200" />`}
        <label for="auth-email">Email</label>
        <input id="auth-email" name="email" type="email" autocomplete="email" required />
        <label for="auth-password">Password</label>
        <input
          id="auth-password"
          name="password"
          type="password"
          minlength="8"
          maxlength="128"
          autocomplete=${registering ? "new-password" : "current-password"}
          required
        />
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <button type="submit" class="primary" disabled=${busy}>
          ${registering ? "Create account" : "Sign in"}
        </button>
        <button
          type="button"
          class="link"
          onClick=${() => {
            setMode(registering ? "login" : "register");
            setError(null);
          }}
        >
          ${registering ? "I have an account: sign in" : "New here? Create an account"}
        </button>
      </form>
    </main>
  `;
}

// ---- conversations --------------------------------------------------------------------------

function useConversations() {
  const [state, setState] = useState({ items: [], cursor: null, hasMore: true, error: null });
  const live = useRef(state);
  live.current = state;
  const loading = useRef(false);
  const generation = useRef(0);

  const loadPage = useCallback(async (fresh) => {
    if (loading.current && !fresh) return;
    if (!fresh && !live.current.hasMore) return;
    const mine = fresh ? ++generation.current : generation.current;
    loading.current = true;
    const cursor = fresh ? null : live.current.cursor;
    try {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (cursor) query.set("cursor", cursor);
      const page = await api.call(`/conversations?${query}`);
      if (mine !== generation.current) return;
      setState((s) => {
        const before = fresh ? [] : s.items;
        const seen = new Set(before.map((c) => c.id));
        return {
          items: before.concat(page.items.filter((c) => !seen.has(c.id))),
          cursor: page.next_cursor,
          hasMore: page.has_more,
          error: null,
        };
      });
    } catch (e) {
      if (mine === generation.current) setState((s) => ({ ...s, error: errorText(e) }));
    } finally {
      if (mine === generation.current) loading.current = false;
    }
  }, []);

  const reload = useCallback(() => loadPage(true), [loadPage]);
  const loadMore = useCallback(() => loadPage(false), [loadPage]);
  const patch = useCallback((id, change) => {
    setState((s) => ({
      ...s,
      items: change
        ? s.items.map((c) => (c.id === id ? { ...c, ...change } : c))
        : s.items.filter((c) => c.id !== id),
    }));
  }, []);
  return { ...state, reload, loadMore, patch };
}

function ConversationItem({ conversation, current, onOpen, onRename, onDelete }) {
  const [editing, setEditing] = useState(false);
  const input = useRef(null);
  const finished = useRef(false);
  useEffect(() => {
    if (editing && input.current) input.current.select();
  }, [editing]);

  function start() {
    finished.current = false;
    setEditing(true);
  }

  function finish(save) {
    // Enter or Escape ends the edit; the blur that follows as the field goes away must not.
    if (finished.current || !input.current) return;
    finished.current = true;
    const value = input.current.value.trim();
    setEditing(false);
    if (save && value !== (conversation.title || "")) onRename(conversation, value || null);
  }

  const title = titleOf(conversation);
  if (editing) {
    return html`<li class="conversation editing">
      <label class="sr-only" for=${`rename-${conversation.id}`}>New title for ${title}</label>
      <input
        id=${`rename-${conversation.id}`}
        ref=${input}
        value=${conversation.title || ""}
        maxlength="200"
        onKeyDown=${(e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            finish(true);
          } else if (e.key === "Escape") {
            e.preventDefault();
            finish(false);
          }
        }}
        onBlur=${() => finish(true)}
      />
    </li>`;
  }
  return html`<li class=${current ? "conversation current" : "conversation"}>
    <button
      class="open"
      aria-current=${current ? "page" : undefined}
      onClick=${() => onOpen(conversation.id)}
    >
      ${title}
    </button>
    <button class="icon" aria-label=${`Rename ${title}`} title="Rename" onClick=${start}>
      ✎
    </button>
    <button class="icon" aria-label=${`Delete ${title}`} title="Delete" onClick=${() => onDelete(conversation)}>
      ×
    </button>
  </li>`;
}

function Sidebar({ list, currentId, onOpen, onNew, onRename, onDelete, open }) {
  const [filter, setFilter] = useState("");
  const sentinel = useRef(null);
  const scroller = useRef(null);
  const needle = filter.trim().toLowerCase();
  const shown = needle
    ? list.items.filter((c) => titleOf(c).toLowerCase().includes(needle))
    : list.items;

  // Page in more conversations while the end of the list is in view (when filtering too: the
  // filter then searches every conversation, one page at a time).
  useEffect(() => {
    const target = sentinel.current;
    if (!target || !list.hasMore) return undefined;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) list.loadMore();
      },
      { root: scroller.current, rootMargin: "200px" },
    );
    observer.observe(target);
    return () => observer.disconnect();
  }, [list.items.length, list.hasMore, needle, list.loadMore]);

  return html`<aside id="conversations" class=${open ? "sidebar open" : "sidebar"} aria-label="Conversations">
    <button class="primary new-chat" onClick=${onNew}>New chat</button>
    <label class="sr-only" for="conversation-filter">Filter conversations by title</label>
    <input
      id="conversation-filter"
      type="search"
      placeholder="Filter by title"
      value=${filter}
      onInput=${(e) => setFilter(e.currentTarget.value)}
    />
    <div class="scroll" ref=${scroller}>
      <ul class="conversations">
        ${shown.map(
          (c) => html`<${ConversationItem}
            key=${c.id}
            conversation=${c}
            current=${c.id === currentId}
            onOpen=${onOpen}
            onRename=${onRename}
            onDelete=${onDelete}
          />`,
        )}
      </ul>
      ${list.error && html`<p class="error" role="alert">${list.error}</p>`}
      ${!list.hasMore && !shown.length &&
      html`<p class="muted empty">${needle ? "No conversation matches." : "No conversations yet."}</p>`}
      ${list.hasMore && html`<div class="sentinel muted" ref=${sentinel}>Loading…</div>`}
    </div>
  </aside>`;
}

// ---- the chat -------------------------------------------------------------------------------

function ToolStep({ step }) {
  const state = !step.done ? "running" : step.ok ? "ok" : "failed";
  const label = { running: "running…", ok: "done", failed: "failed" }[state];
  return html`<details class=${`tool ${state}`} data-call-id=${step.call_id}>
    <summary>
      <span class="tool-icon" aria-hidden="true">⚙</span>
      <span class="tool-name">${step.name}</span>
      <span class="tool-state">${label}</span>
    </summary>
    <div class="tool-body">
      <div class="tool-label">Arguments</div>
      <pre>${json(step.arguments || {})}</pre>
      ${step.done &&
      html`<div class="tool-label">${step.ok ? "Result" : "Error"}</div>
        <pre>${step.ok ? json(step.result) : typeof step.error === "string" ? step.error : json(step.error)}</pre>`}
    </div>
  </details>`;
}

function Message({ message, onRetry, canRetry }) {
  const who = message.role === "user" ? "You" : message.role === "assistant" ? "Assistant" : message.role;
  const streaming = message.status === "streaming";
  return html`<article class=${`message ${message.role} ${message.status || ""}`} aria-label=${`${who} said`}>
    <div class="who">${who}</div>
    ${message.steps && message.steps.length > 0 &&
    html`<div class="tools">${message.steps.map((s) => html`<${ToolStep} key=${s.call_id} step=${s} />`)}</div>`}
    ${message.role === "tool"
      ? html`<pre class="tool-output">${message.content}</pre>`
      : (message.content || !streaming) &&
        html`<div class="md" dangerouslySetInnerHTML=${{ __html: renderMarkdown(message.content) }}></div>`}
    ${streaming && html`<div class="typing muted" aria-label="The assistant is writing">…</div>`}
    ${message.error &&
    html`<div class="failure" role="alert">
      <span>${message.error.detail}</span>
      ${canRetry && html`<button onClick=${() => onRetry(message)}>Retry</button>`}
    </div>`}
  </article>`;
}

function Chat({ conversationId, conversation, onStarted, onTurnEnded, onToolResult, onMissing }) {
  const [messages, setMessages] = useState([]);
  const [older, setOlder] = useState(null);
  const [running, setRunning] = useState(false);
  const [loadError, setLoadError] = useState(null);
  const controller = useRef(null);
  const adopted = useRef(null);
  const log = useRef(null);
  const stick = useRef(true);
  const input = useRef(null);
  const counter = useRef(0);
  const shown = useRef(null); // the conversation whose messages are (being) shown

  const load = useCallback(
    async (id) => {
      shown.current = id;
      setLoadError(null);
      setOlder(null);
      setMessages([]);
      if (!id) return;
      try {
        const page = await api.call(`/conversations/${id}/messages?limit=50`);
        if (shown.current !== id) return; // another conversation was opened meanwhile
        stick.current = true;
        setMessages(page.items.map(fromApi));
        setOlder(page.has_more ? page.next_cursor : null);
      } catch (e) {
        if (shown.current !== id) return;
        if (e instanceof api.ApiError && e.status === 404) onMissing(id);
        else setLoadError(errorText(e));
      }
    },
    [onMissing],
  );

  useEffect(() => {
    if (conversationId && conversationId === adopted.current) return; // the turn started it
    if (controller.current) controller.current.abort();
    adopted.current = null;
    load(conversationId);
    if (input.current) input.current.focus();
  }, [conversationId, load]);

  useEffect(() => () => controller.current && controller.current.abort(), []);

  useEffect(() => {
    if (stick.current && log.current) log.current.scrollTop = log.current.scrollHeight;
  }, [messages]);

  async function loadOlder() {
    const id = conversationId;
    let page;
    try {
      page = await api.call(
        `/conversations/${id}/messages?limit=50&cursor=${encodeURIComponent(older)}`,
      );
    } catch (e) {
      setLoadError(errorText(e));
      return;
    }
    if (shown.current !== id) return;
    stick.current = false;
    setMessages((ms) => page.items.map(fromApi).concat(ms));
    setOlder(page.has_more ? page.next_cursor : null);
  }

  // Stop: ask the server to end the turn (wherever it runs), then close the stream.
  async function stop() {
    const abort = controller.current;
    if (!abort) return;
    abort.stopping = true;
    if (abort.reply) {
      try {
        await api.call(abort.reply, { method: "POST" });
      } catch (e) {
        // The turn already ended (409) or the server is away: closing the stream is enough.
      }
    }
    abort.abort();
  }

  async function turn(path, body, userText, resend) {
    const abort = new AbortController();
    controller.current = abort;
    const n = ++counter.current;
    const reply = { key: `reply-${n}`, role: "assistant", content: "", status: "streaming", steps: [], error: null };
    const additions = userText ? [{ key: `mine-${n}`, role: "user", content: userText, status: "sent", steps: [] }, reply] : [reply];
    stick.current = true;
    setMessages((ms) => ms.concat(additions));
    setRunning(true);
    const refresh = () => setMessages((ms) => ms.slice());
    let started = conversationId;
    let ended = false;
    const adopt = (id) => {
      if (!started && id) {
        started = id;
        adopted.current = id;
        shown.current = id;
        onStarted(id);
      }
    };
    const step = (callId) => reply.steps.find((s) => s.call_id === callId);
    try {
      await api.streamTurn(path, body, abort.signal, (frame) => {
        adopt(frame.conversation_id || (frame.message && frame.message.conversation_id));
        if (frame.message_id && !abort.reply) {
          // What Stop cancels: the turn goes on by itself when only the stream is closed.
          abort.reply = `/chat/conversations/${frame.conversation_id}/messages/${frame.message_id}/cancel`;
        }
        switch (frame.type) {
          case "chunk":
            reply.content += frame.delta || "";
            break;
          case "tool_call":
            if (!step(frame.call_id)) {
              reply.steps.push({ call_id: frame.call_id, name: frame.name, arguments: frame.arguments, done: false });
            }
            break;
          case "tool_result": {
            let s = step(frame.call_id);
            if (!s) {
              s = { call_id: frame.call_id, name: frame.name, arguments: {} };
              reply.steps.push(s);
            }
            Object.assign(s, { done: true, ok: Boolean(frame.ok), result: frame.result, error: frame.error });
            onToolResult();
            break;
          }
          case "done":
            Object.assign(reply, fromApi(frame.message), { key: reply.key });
            ended = true;
            break;
          case "error":
            reply.status = "error";
            reply.error = {
              detail: abort.stopping ? "Stopped." : frame.detail || "The reply failed.",
              code: frame.code,
              action: "retry",
            };
            ended = true;
            break;
          default:
            return; // a frame this page does not know: ignored
        }
        refresh();
      });
      if (!ended) {
        reply.status = "error";
        reply.error = { detail: "The connection closed before the reply ended.", action: "retry" };
      }
    } catch (e) {
      reply.status = "error";
      if (e && e.name === "AbortError") {
        reply.error = { detail: "Stopped.", action: "retry" };
      } else if (e instanceof api.ApiError) {
        // Refused before the turn began: nothing was stored; offer to send it again.
        reply.error = { detail: errorText(e), action: resend ? "resend" : "retry", resend };
      } else {
        reply.error = { detail: errorText(e), action: "retry" };
      }
    } finally {
      if (controller.current === abort) controller.current = null;
      setRunning(false);
      refresh();
      onTurnEnded(started);
    }
  }

  function sendText(text) {
    const content = text.trim();
    if (!content || running) return;
    const path = conversationId ? `/chat/conversations/${conversationId}/messages` : "/chat/messages";
    turn(path, { content }, content, { text: content });
  }

  function submit(event) {
    event.preventDefault();
    const box = input.current;
    if (!box || !box.value.trim() || running) return;
    sendText(box.value);
    box.value = "";
  }

  function onKeyDown(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submit(event);
  }

  function retry(message) {
    if (running) return;
    if (message.error && message.error.action === "resend" && message.error.resend) {
      setMessages((ms) => ms.filter((m) => m !== message && !(m.key === message.key.replace("reply-", "mine-"))));
      sendText(message.error.resend.text);
    } else if (conversationId) {
      turn(`/chat/conversations/${conversationId}/retry`, {}, null, null);
    }
  }

  const last = messages[messages.length - 1];
  const title = conversation ? titleOf(conversation) : conversationId ? "" : "New chat";
  return html`<main class="chat" aria-label="Chat">
    <h2 class="chat-title">${title}</h2>
    <div
      class="log"
      ref=${log}
      role="log"
      aria-live="polite"
      aria-label="Messages"
      onScroll=${(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
      }}
    >
      ${older && html`<button class="link older" onClick=${loadOlder}>Show older messages</button>`}
      ${!messages.length && !loadError &&
      html`<div class="welcome muted">
        <p>Ask the assistant to manage your tasks, for example:</p>
        <p><em>add buy milk tomorrow #home</em> · <em>what's left?</em> · <em>done with the milk</em></p>
      </div>`}
      ${loadError && html`<p class="error" role="alert">${loadError}</p>`}
      ${messages.map(
        (m) => html`<${Message}
          key=${m.key}
          message=${m}
          onRetry=${retry}
          canRetry=${!running &&
          m === last &&
          m.role === "assistant" &&
          m.status === "error" &&
          Boolean(conversationId || (m.error && m.error.action === "resend"))}
        />`,
      )}
    </div>
    <form class="composer" onSubmit=${submit}>
      <label class="sr-only" for="composer-input">Message</label>
      <textarea
        id="composer-input"
        ref=${input}
        rows="2"
        placeholder="Message the assistant (Enter sends, Shift+Enter for a new line)"
        onKeyDown=${onKeyDown}
      ></textarea>
      ${running
        ? html`<button type="button" class="stop" onClick=${stop}>Stop</button>`
        : html`<button type="submit" class="primary">Send</button>`}
    </form>
  </main>`;
}

// ---- tasks ----------------------------------------------------------------------------------

function TaskItem({ task, onToggle }) {
  const id = `task-${task.id}`;
  return html`<li class=${task.completed ? "task done" : "task"}>
    <input id=${id} type="checkbox" checked=${task.completed} onChange=${() => onToggle(task)} />
    <label for=${id}>
      <span class="task-title">${task.title}</span>
      ${(task.due_at || task.priority !== "medium" || (task.tags || []).length > 0) &&
      html`<span class="task-meta muted">
        ${task.due_at && html`<span>due ${formatDue(task.due_at)}</span>`}
        ${task.priority && task.priority !== "medium" && html`<span class=${`priority ${task.priority}`}>${task.priority}</span>`}
        ${(task.tags || []).map((t) => html`<span class="tag">#${t}</span>`)}
      </span>`}
    </label>
  </li>`;
}

function TasksPanel({ tasks, onToggle, open }) {
  return html`<aside id="tasks" class=${open ? "tasks open" : "tasks"} aria-label="Tasks">
    <h2>Tasks</h2>
    ${tasks.error && html`<p class="error" role="alert">${tasks.error}</p>`}
    <ul class="task-list pending">
      ${tasks.pending.map((t) => html`<${TaskItem} key=${t.id} task=${t} onToggle=${onToggle} />`)}
    </ul>
    ${!tasks.pending.length && html`<p class="muted empty">Nothing to do.</p>`}
    ${tasks.done.length > 0 &&
    html`<details class="done-tasks">
      <summary>Done (${tasks.done.length})</summary>
      <ul class="task-list">
        ${tasks.done.map((t) => html`<${TaskItem} key=${t.id} task=${t} onToggle=${onToggle} />`)}
      </ul>
    </details>`}
  </aside>`;
}

function useTasks() {
  const [tasks, setTasks] = useState({ pending: [], done: [], error: null });
  const reload = useCallback(async () => {
    try {
      const [pending, done] = await Promise.all([
        api.call("/tasks?completed=false&limit=100"),
        api.call("/tasks?completed=true&limit=100"),
      ]);
      setTasks({ pending: pending.items, done: done.items.slice().reverse(), error: null });
    } catch (e) {
      setTasks((t) => ({ ...t, error: errorText(e) }));
    }
  }, []);
  const toggle = useCallback(
    async (task) => {
      try {
        await api.call(`/tasks/${task.id}/${task.completed ? "reopen" : "complete"}`, { method: "POST" });
      } catch (e) {
        setTasks((t) => ({ ...t, error: errorText(e) }));
      }
      reload();
    },
    [reload],
  );
  return { tasks, reload, toggle };
}

// ---- the page -------------------------------------------------------------------------------

function Shell() {
  const [conversationId, setConversationId] = useState(idFromUrl());
  const [panel, setPanel] = useState(null); // "conversations" | "tasks" on a narrow screen
  const [toast, setToast] = useState(null);
  const [me, setMe] = useState(null);
  const list = useConversations();
  const { tasks, reload: reloadTasks, toggle } = useTasks();

  useEffect(() => {
    list.reload();
    reloadTasks();
    api.call("/auth/me").then(setMe, () => {});
    const onPop = () => setConversationId(idFromUrl());
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  useEffect(() => {
    if (!toast) return undefined;
    const timer = setTimeout(() => setToast(null), UNDO_MS);
    return () => clearTimeout(timer);
  }, [toast]);

  const navigate = useCallback((id, replace = false) => {
    if (replace) history.replaceState(null, "", urlFor(id));
    else history.pushState(null, "", urlFor(id));
    setConversationId(id);
    setPanel(null);
  }, []);

  const onMissing = useCallback(
    (id) => {
      navigate(null, true);
      setToast({ text: "That conversation does not exist or was deleted.", id });
    },
    [navigate],
  );

  async function rename(conversation, title) {
    list.patch(conversation.id, { title });
    try {
      const updated = await api.call(`/conversations/${conversation.id}`, { method: "PATCH", body: { title } });
      list.patch(conversation.id, updated);
    } catch (e) {
      list.patch(conversation.id, { title: conversation.title });
      setToast({ text: errorText(e) });
    }
  }

  async function remove(conversation) {
    try {
      await api.call(`/conversations/${conversation.id}`, { method: "DELETE" });
    } catch (e) {
      setToast({ text: errorText(e) });
      return;
    }
    list.patch(conversation.id, null);
    const wasOpen = conversation.id === conversationId;
    if (wasOpen) navigate(null);
    setToast({
      text: `Deleted “${titleOf(conversation)}”.`,
      undo: async () => {
        setToast(null);
        try {
          await api.call(`/conversations/${conversation.id}/restore`, { method: "POST" });
          await list.reload();
          if (wasOpen) navigate(conversation.id);
        } catch (e) {
          setToast({ text: errorText(e) });
        }
      },
    });
  }

  const onStarted = useCallback(
    (id) => {
      navigate(id, false);
      list.reload(); // the new conversation shows in the list while its first reply streams
    },
    [navigate, list.reload],
  );
  const onTurnEnded = useCallback(() => {
    list.reload();
    reloadTasks();
  }, [list.reload, reloadTasks]);

  const current = list.items.find((c) => c.id === conversationId) || null;
  const toggleButton = (name, label) => html`<button
    class="panel-toggle"
    aria-controls=${name}
    aria-expanded=${panel === name ? "true" : "false"}
    onClick=${() => setPanel(panel === name ? null : name)}
  >
    ${label}
  </button>`;

  return html`<div class="shell">
    <header class="topbar">
      ${toggleButton("conversations", "Chats")}
      <span class="brand">convstore</span>
      <span class="spacer"></span>
      ${toggleButton("tasks", `Tasks (${tasks.pending.length})`)}
      ${me && html`<span class="me muted" title=${me.email}>${me.name || me.email}</span>`}
      <button class="signout" onClick=${() => api.logout()}>Sign out</button>
    </header>
    <${Sidebar}
      list=${list}
      currentId=${conversationId}
      open=${panel === "conversations"}
      onOpen=${(id) => navigate(id)}
      onNew=${() => navigate(null)}
      onRename=${rename}
      onDelete=${remove}
    />
    <${Chat}
      conversationId=${conversationId}
      conversation=${current}
      onStarted=${onStarted}
      onTurnEnded=${onTurnEnded}
      onToolResult=${reloadTasks}
      onMissing=${onMissing}
    />
    <${TasksPanel} tasks=${tasks} onToggle=${toggle} open=${panel === "tasks"} />
    ${toast &&
    html`<div class="toast" role="status">
      <span>${toast.text}</span>
      ${toast.undo && html`<button onClick=${toast.undo}>Undo</button>`}
      <button class="icon" aria-label="Dismiss" onClick=${() => setToast(null)}>×</button>
    </div>`}
  </div>`;
}

function App() {
  const [authed, setAuthed] = useState(api.signedIn());
  useEffect(() => api.onSession((s) => setAuthed(s !== null)), []);
  return authed ? html`<${Shell} />` : html`<${AuthView} />`;
}

render(html`<${App} />`, document.getElementById("app"));
