//! Running action code in QuickJS (rquickjs): the sandbox, its limits, and one execution.
//!
//! Isolation: every action of every execution runs in a fresh `Context` — new globals, new
//! built-in prototypes — so nothing one login's code leaves behind is visible to the next one.
//! Contexts are cheap; the `Runtime` under them (the heap, the memory and stack limits, the
//! interrupt handler) is kept per thread and reused, unless an execution hit a limit or left
//! work behind, in which case it is thrown away. QuickJS has no file, network or process
//! access unless the host adds it, and this host adds none: the only native function a context
//! gets is the recorder behind `api` and `console`.
//!
//! Limits: a deadline checked by QuickJS's interrupt handler (a runaway loop is stopped within
//! a few thousand bytecode instructions) and by the job loop (an endless promise chain), a heap
//! limit, a native stack limit. A promise still pending once no job is left never settles.
//!
//! This module must not add host capabilities to a context (no std/os modules, no loader, no
//! timers): whatever a native function can do, every action can.

use crate::bytecode;
use crate::error::ActionError;
use crate::outcome::{LogLine, Outcome, Recorder};
use rquickjs::function::Opt;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Object, Runtime, Value};
use serde_json::{Map, Value as Json};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Auth0's limit on the size of an action's code.
pub const MAX_CODE_BYTES: usize = 100 * 1024;

const PRELUDE: &str = include_str!("prelude.js");
/// Node's CommonJS wrapper, on the code's first line so error line numbers match the source.
const WRAP_HEAD: &str = "(function (exports, module, require) {";
const WRAP_TAIL: &str = "\n})";

/// Resource limits of one execution (all actions of one trigger together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget; the code cannot wait on anything, so this is CPU time.
    pub time: Duration,
    /// Heap of the JavaScript runtime.
    pub memory_bytes: usize,
    /// Native stack the interpreter may use (deep recursion ends with an error, not a crash).
    pub stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { time: Duration::from_secs(5), memory_bytes: 64 << 20, stack_bytes: 512 << 10 }
    }
}

/// Code to run: one deployed action version with its decrypted secrets.
#[derive(Clone)]
pub struct Loaded {
    pub name: String,
    pub code: Arc<str>,
    /// `event.secrets` for this action.
    pub secrets: Arc<Map<String, Json>>,
}

impl std::fmt::Debug for Loaded {
    // Hand-written so secret values never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("name", &self.name)
            .field("code_len", &self.code.len())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The result of one execution, and the console lines it printed either way.
#[derive(Debug)]
pub struct Execution {
    pub result: Result<Outcome, ActionError>,
    pub logs: Vec<LogLine>,
}

/// Runs action code under fixed limits. Cheap to clone and share; executions are synchronous
/// and belong on a blocking thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Engine {
    limits: Limits,
}

thread_local! {
    static SANDBOX: RefCell<Option<Sandbox>> = const { RefCell::new(None) };
}

/// A runtime with its limits and interrupt handler, and the bytecode compiled in it, reused
/// by one thread.
struct Sandbox {
    limits: Limits,
    runtime: Runtime,
    deadline: Rc<Cell<Option<Instant>>>,
    interrupted: Rc<Cell<bool>>,
    prelude: Vec<u8>,
    /// Wrapped action code → bytecode; action versions are immutable, so the code is the key.
    compiled: RefCell<HashMap<Arc<str>, Rc<[u8]>>>,
}

/// Distinct codes whose bytecode one thread keeps (a tenant has at most 100 actions).
const COMPILED_CACHE: usize = 128;

impl Sandbox {
    fn new(limits: Limits) -> Result<Self, ActionError> {
        let runtime = Runtime::new().map_err(engine)?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(limits.stack_bytes);
        let deadline = Rc::new(Cell::new(None::<Instant>));
        let interrupted = Rc::new(Cell::new(false));
        let (d, i) = (deadline.clone(), interrupted.clone());
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let over = d.get().is_some_and(|d| Instant::now() >= d);
            if over {
                i.set(true);
            }
            over
        })));
        let prelude = Context::full(&runtime)
            .and_then(|c| c.with(|ctx| bytecode::compile(&ctx, "prelude", PRELUDE)))
            .map_err(engine)?;
        Ok(Sandbox { limits, runtime, deadline, interrupted, prelude, compiled: RefCell::default() })
    }

    fn past_deadline(&self) -> bool {
        self.deadline.get().is_some_and(|d| Instant::now() >= d)
    }

    /// The bytecode of an action's wrapped code, compiled on first use.
    fn action_bytecode(&self, ctx: &Ctx<'_>, action: &Loaded) -> rquickjs::Result<Rc<[u8]>> {
        if let Some(b) = self.compiled.borrow().get(&action.code) {
            return Ok(b.clone());
        }
        let bytes: Rc<[u8]> = compile(ctx, &action.name, &action.code)?.into();
        let mut cache = self.compiled.borrow_mut();
        if cache.len() >= COMPILED_CACHE {
            cache.clear();
        }
        cache.insert(action.code.clone(), bytes.clone());
        Ok(bytes)
    }
}

fn engine(e: impl std::fmt::Display) -> ActionError {
    ActionError::Engine(e.to_string())
}

/// Takes this thread's sandbox (or makes one), runs `f`, and keeps the sandbox for the next
/// execution only if `f` says it is clean.
fn with_sandbox<T>(limits: Limits, f: impl FnOnce(&Sandbox) -> (T, bool)) -> Result<T, ActionError> {
    let cached = SANDBOX.with(|s| s.borrow_mut().take()).filter(|s| s.limits == limits);
    let sandbox = match cached {
        Some(s) => s,
        None => Sandbox::new(limits)?,
    };
    sandbox.interrupted.set(false);
    let (out, clean) = f(&sandbox);
    sandbox.deadline.set(None);
    if clean {
        SANDBOX.with(|s| *s.borrow_mut() = Some(sandbox));
    }
    Ok(out)
}

impl Engine {
    pub fn new(limits: Limits) -> Self {
        Engine { limits }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Deploy-time build: compiles the code without running any of it, and reports the first
    /// syntax error with its line.
    pub fn check(&self, code: &str) -> Result<(), ActionError> {
        if code.len() > MAX_CODE_BYTES {
            return Err(ActionError::Build { line: None, message: "the code is larger than 100 KB".into() });
        }
        with_sandbox(self.limits, |sb| {
            sb.deadline.set(Some(Instant::now() + self.limits.time));
            let result = Context::full(&sb.runtime).map_err(engine).and_then(|context| {
                context.with(|ctx| match compile(&ctx, "action", code) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(build_error(&ctx, e)),
                })
            });
            let clean = !sb.interrupted.get();
            (result, clean)
        })?
    }

    /// Runs the post-login handlers of `actions` in order on `event` (without `secrets`, which
    /// each action gets from its own `Loaded`). Stops at the first failure or denial.
    pub fn run_post_login(&self, actions: &[Loaded], event: &Json) -> Execution {
        let recorder = Rc::new(RefCell::new(Recorder::default()));
        let event_json = event.to_string();
        let result = with_sandbox(self.limits, |sb| {
            sb.deadline.set(Some(Instant::now() + self.limits.time));
            for action in actions {
                recorder.borrow_mut().start(&action.name);
                let result = run_action(sb, action, &event_json, &recorder);
                // Whatever happened, no job of this action may survive into another execution.
                let drained = drain_jobs(sb);
                if let Err(e) = result {
                    let clean = !e.is_limit() && drained;
                    return (Err(e), clean);
                }
                if !drained {
                    return (Err(limit_error(sb, &action.name)), false);
                }
                let mut r = recorder.borrow_mut();
                if let Some(message) = r.violation.take() {
                    return (Err(ActionError::Contract { action: action.name.clone(), message }), true);
                }
                if r.outcome.denied.is_some() {
                    break;
                }
            }
            (Ok(()), true)
        })
        .and_then(|r| r);
        let recorder = std::mem::take(&mut *recorder.borrow_mut());
        Execution { result: result.map(|()| recorder.outcome), logs: recorder.logs }
    }
}

/// Compiles the CommonJS wrapper around `code`: parses everything, runs nothing of it.
fn compile(ctx: &Ctx<'_>, name: &str, code: &str) -> rquickjs::Result<Vec<u8>> {
    let mut source = String::with_capacity(code.len() + WRAP_HEAD.len() + WRAP_TAIL.len());
    source.push_str(WRAP_HEAD);
    source.push_str(code);
    source.push_str(WRAP_TAIL);
    bytecode::compile(ctx, name, &source)
}

/// Runs every job QuickJS has queued, until none is left or the deadline passes.
fn drain_jobs(sb: &Sandbox) -> bool {
    loop {
        if sb.past_deadline() {
            return !sb.runtime.is_job_pending();
        }
        match sb.runtime.execute_pending_job() {
            Ok(true) => {}
            Ok(false) => return true,
            // A job that threw is an unhandled rejection: the handler's own promise says
            // whether that matters.
            Err(_) => {}
        }
    }
}

fn limit_error(sb: &Sandbox, action: &str) -> ActionError {
    ActionError::TimeLimit { action: action.to_string(), limit_ms: sb.limits.time.as_millis() }
}

fn run_action(
    sb: &Sandbox,
    action: &Loaded,
    event_json: &str,
    recorder: &Rc<RefCell<Recorder>>,
) -> Result<(), ActionError> {
    let context = Context::full(&sb.runtime).map_err(engine)?;
    let settled = context.with(|ctx| -> Result<Option<Result<(), String>>, ActionError> {
        let fail = |e: rquickjs::Error| classify(sb, &ctx, e, &action.name);
        let handler = prepare(sb, &ctx, action, event_json, recorder).map_err(&fail)?;
        let Some((handler, event, api)) = handler else {
            return Err(ActionError::Contract {
                action: action.name.clone(),
                message: "the code does not export onExecutePostLogin (exports.onExecutePostLogin = async (event, api) => {…})".into(),
            });
        };
        let returned: Value = handler.call((event, api)).map_err(&fail)?;
        let Some(promise) = returned.as_promise().cloned() else {
            return Ok(Some(Ok(())));
        };
        // Let the handler's awaits run to completion (or to the deadline).
        drop(returned);
        loop {
            if sb.past_deadline() {
                return Err(limit_error(sb, &action.name));
            }
            if !ctx.execute_pending_job() {
                break;
            }
        }
        if sb.interrupted.get() {
            return Err(limit_error(sb, &action.name));
        }
        Ok(match promise.state() {
            rquickjs::promise::PromiseState::Pending => None,
            rquickjs::promise::PromiseState::Resolved => Some(Ok(())),
            rquickjs::promise::PromiseState::Rejected => {
                let caught = promise.result::<Value>().and_then(|r| r.catch(&ctx).err());
                let err = match caught {
                    Some(c) => classify_caught(sb, c, &action.name),
                    None => ActionError::Threw { action: action.name.clone(), message: "rejected".into() },
                };
                if let ActionError::Threw { message, .. } = err {
                    Some(Err(message))
                } else {
                    return Err(err);
                }
            }
        })
    })?;
    match settled {
        None => Err(ActionError::NeverSettled { action: action.name.clone() }),
        Some(Ok(())) => Ok(()),
        Some(Err(message)) => Err(ActionError::Threw { action: action.name.clone(), message }),
    }
}

type Prepared<'js> = (Function<'js>, Value<'js>, Object<'js>);

/// Builds `api`, `console`, `event` in the fresh context and evaluates the action's module
/// code; returns its handler, or `None` when it exports none.
fn prepare<'js>(
    sb: &Sandbox,
    ctx: &Ctx<'js>,
    action: &Loaded,
    event_json: &str,
    recorder: &Rc<RefCell<Recorder>>,
) -> rquickjs::Result<Option<Prepared<'js>>> {
    let r = recorder.clone();
    // An argument may be absent or `undefined` (a value with no JSON form): both are `None`.
    let host = Function::new(
        ctx.clone(),
        move |op: String, a: Opt<Option<String>>, b: Opt<Option<String>>| -> Option<String> {
            r.borrow_mut().command(&op, a.0.flatten(), b.0.flatten())
        },
    )?;
    let prelude = bytecode::load(ctx, &sb.prelude)?.into_function().ok_or(rquickjs::Error::Unknown)?;
    let parts: Object = prelude.call((host,))?;
    let api: Object = parts.get("api")?;
    let require: Function = parts.get("require")?;
    ctx.globals().set("console", parts.get::<_, Value>("console")?)?;

    let event: Object = ctx.json_parse(event_json)?.into_object().ok_or(rquickjs::Error::Unknown)?;
    let secrets = serde_json::to_string(action.secrets.as_ref()).unwrap_or_else(|_| "{}".into());
    event.set("secrets", ctx.json_parse(secrets)?)?;

    let code = sb.action_bytecode(ctx, action)?;
    let module_fn = bytecode::load(ctx, &code)?.into_function().ok_or(rquickjs::Error::Unknown)?;
    let exports = Object::new(ctx.clone())?;
    let module = Object::new(ctx.clone())?;
    module.set("exports", exports.clone())?;
    module_fn.call::<_, ()>((exports, module.clone(), require))?;
    let exports: Value = module.get("exports")?;
    let handler = match exports.as_object() {
        Some(o) => o.get::<_, Value>("onExecutePostLogin")?,
        None => return Ok(None),
    };
    Ok(handler.into_function().map(|h| (h, event.into_value(), api)))
}

fn classify(sb: &Sandbox, ctx: &Ctx<'_>, e: rquickjs::Error, action: &str) -> ActionError {
    match Err::<(), _>(e).catch(ctx) {
        Err(caught) => classify_caught(sb, caught, action),
        Ok(()) => ActionError::Engine("unknown failure".into()),
    }
}

fn classify_caught(sb: &Sandbox, caught: CaughtError<'_>, action: &str) -> ActionError {
    let action = action.to_string();
    if sb.interrupted.get() {
        return ActionError::TimeLimit { action, limit_ms: sb.limits.time.as_millis() };
    }
    let message = match caught {
        CaughtError::Error(rquickjs::Error::Allocation) => {
            return ActionError::MemoryLimit { action, limit_mb: sb.limits.memory_bytes >> 20 };
        }
        CaughtError::Error(e) => return ActionError::Engine(e.to_string()),
        CaughtError::Exception(ex) => {
            let name: Option<String> =
                ex.get::<_, Option<rquickjs::Coerced<String>>>("name").ok().flatten().map(|c| c.0);
            let text = ex.message().unwrap_or_default();
            match name {
                Some(n) if !n.is_empty() => format!("{n}: {text}"),
                _ => text,
            }
        }
        CaughtError::Value(v) => v
            .get::<rquickjs::Coerced<String>>()
            .map(|c| c.0)
            .unwrap_or_else(|_| "a value that is not an Error was thrown".into()),
    };
    let lower = message.to_ascii_lowercase();
    if lower.contains("out of memory") {
        ActionError::MemoryLimit { action, limit_mb: sb.limits.memory_bytes >> 20 }
    } else if lower.contains("stack overflow") || lower.contains("maximum call stack") {
        ActionError::StackLimit { action }
    } else if lower.contains("interrupted") && sb.past_deadline() {
        ActionError::TimeLimit { action, limit_ms: sb.limits.time.as_millis() }
    } else {
        ActionError::Threw { action, message }
    }
}

/// A syntax error as a deploy-time build error, with the line QuickJS reports.
fn build_error(ctx: &Ctx<'_>, e: rquickjs::Error) -> ActionError {
    let caught = match Err::<(), _>(e).catch(ctx) {
        Err(c) => c,
        Ok(()) => return ActionError::Engine("unknown failure".into()),
    };
    match caught {
        CaughtError::Exception(ex) => {
            let line = ex.get::<_, Option<u32>>("lineNumber").ok().flatten().or_else(|| {
                // "    at action:3:10" — the first frame names the file, the line and column.
                let stack = ex.stack()?;
                let at = stack.find("action:")? + "action:".len();
                stack[at..].split(':').next()?.trim().parse().ok()
            });
            let name: String =
                ex.get::<_, Option<rquickjs::Coerced<String>>>("name").ok().flatten().map(|c| c.0).unwrap_or_default();
            let message = ex.message().unwrap_or_default();
            ActionError::Build { line, message: if name.is_empty() { message } else { format!("{name}: {message}") } }
        }
        CaughtError::Error(rquickjs::Error::Allocation) => {
            ActionError::Build { line: None, message: "the code is too large to compile".into() }
        }
        other => ActionError::Build { line: None, message: other.to_string() },
    }
}
