//! Scripts compiled once to QuickJS bytecode and instantiated in each fresh context: loading
//! bytecode is about ten times faster than parsing the source again (the prelude alone takes
//! longer to parse than the guide's whole action takes to run).
//!
//! rquickjs exposes bytecode for ES modules only, and action code is CommonJS (sloppy mode,
//! like Node's), so this goes through the C API. The bytes only ever come from `compile` in
//! this process, which is what makes `load` sound.

use rquickjs::{Ctx, Value, qjs};

/// Compiles a classic script without running it. A syntax error is left pending on `ctx`
/// (`Error::Exception`), as rquickjs does.
pub(crate) fn compile(ctx: &Ctx<'_>, filename: &str, source: &str) -> rquickjs::Result<Vec<u8>> {
    // QuickJS wants NUL-terminated input and filename.
    let mut input = Vec::with_capacity(source.len() + 1);
    input.extend_from_slice(source.as_bytes());
    input.push(0);
    let filename = std::ffi::CString::new(filename.replace('\0', "")).unwrap_or_default();
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the live context `ctx` borrows; `input` and `filename` outlive the calls;
    // the compiled function value is freed exactly once, and the buffer with js_free.
    unsafe {
        let func = qjs::JS_Eval(
            raw,
            input.as_ptr().cast(),
            source.len() as _,
            filename.as_ptr(),
            (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
        );
        if qjs::JS_IsException(func) {
            return Err(rquickjs::Error::Exception);
        }
        let mut len: qjs::size_t = 0;
        let buf = qjs::JS_WriteObject(raw, &mut len, func, qjs::JS_WRITE_OBJ_BYTECODE as i32);
        qjs::JS_FreeValue(raw, func);
        if buf.is_null() {
            return Err(rquickjs::Error::Exception);
        }
        let bytes = std::slice::from_raw_parts(buf, len as usize).to_vec();
        qjs::js_free(raw, buf.cast());
        Ok(bytes)
    }
}

/// Instantiates and runs a script compiled by `compile`, returning its completion value.
pub(crate) fn load<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> rquickjs::Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: the bytes come from `compile` in this process (same QuickJS build); the read
    // object is consumed by JS_EvalFunction; the result is handed to rquickjs, which owns it.
    unsafe {
        let func = qjs::JS_ReadObject(raw, bytes.as_ptr(), bytes.len() as _, qjs::JS_READ_OBJ_BYTECODE as i32);
        if qjs::JS_IsException(func) {
            return Err(rquickjs::Error::Exception);
        }
        let value = qjs::JS_EvalFunction(raw, func);
        if qjs::JS_IsException(value) {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), value))
    }
}
