// The post-login `api` object and `console`, built fresh in every execution's context before the
// action's own code runs. Every command goes to `host(op, a, b)`, a native function owned by the
// Rust side (engine.rs), which records it; values cross as JSON text. The references used here are
// captured now, so an action replacing `JSON.stringify` or `String` later changes nothing for us.
(function (host) {
  'use strict';
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const toString = String;
  const freeze = Object.freeze;

  // Where Auth0's `api` names something (a claim, a metadata key, a scope, a cache key) it takes
  // a string; anything else is a mistake in the action, reported at the call that made it
  // rather than turned into the text "undefined".
  const text = (call, arg, value) => {
    if (typeof value !== 'string') throw new TypeError(`${call}: ${arg} must be a string`);
    return value;
  };
  // The JSON text of a value, or `undefined` where JSON has none (undefined, a function, a
  // symbol): tokens and profiles are JSON, so such a value is simply absent from them, as
  // JSON.stringify leaves such a property out of an object.
  const jsonOf = (call, value) => {
    try {
      return stringify(value);
    } catch (e) {
      throw new TypeError(`${call}: value cannot be written as JSON (${e instanceof Error ? e.message : toString(e)})`);
    }
  };
  const unsupported = (what) => {
    throw new Error(`${what} is not supported by Gatehouse`);
  };

  // QuickJS checks the time limit between instructions and inside calls back into JavaScript,
  // not inside the built-ins that walk an array's length in C: on an object claiming
  // `length: 2 ** 53 - 1`, or an array whose length was set that high, `join` or `reverse`
  // would run for ever without allocating. No array that fits in memory is this long, so the
  // walking methods refuse longer ones; on array-likes (whose `length` a getter could change
  // between our read and the built-in's) they run on a copy made here, in JavaScript, or not
  // at all when they would modify it.
  const MAX_WALK = 1 << 24;
  const apply = Reflect.apply;
  const isArray = Array.isArray;
  const defineProperty = Object.defineProperty;
  const spreadable = Symbol.isConcatSpreadable;
  const lengthOf = (o, name) => {
    const n = Math.floor(Number(o.length));
    if (n > MAX_WALK) throw new RangeError(`Array.prototype.${name}: a length of ${n} is not supported by Gatehouse`);
    return n > 0 ? n : 0;
  };
  const copyOf = (o, name) => {
    const n = lengthOf(o, name);
    const copy = [];
    for (let i = 0; i < n; i++) if (i in o) copy[i] = o[i];
    copy.length = n;
    return copy;
  };
  const guard = (name, modifies) => {
    const original = Array.prototype[name];
    if (typeof original !== 'function') return;
    const guarded = {
      [name](...args) {
        if (this === null || this === undefined) return apply(original, this, args);
        const self = Object(this);
        let target = self;
        if (isArray(self)) lengthOf(self, name);
        else if (modifies) throw new TypeError(`Array.prototype.${name} on an array-like is not supported by Gatehouse`);
        else target = copyOf(self, name);
        if (name === 'concat') {
          for (let i = 0; i < args.length; i++) {
            const a = args[i];
            if (a !== null && typeof a === 'object' && (isArray(a) || a[spreadable])) {
              args[i] = isArray(a) ? (lengthOf(a, name), a) : copyOf(a, name);
            }
          }
        }
        return apply(original, target, args);
      },
    }[name];
    defineProperty(Array.prototype, name, { value: guarded, writable: true, enumerable: false, configurable: true });
  };
  for (const name of ['concat', 'every', 'filter', 'find', 'findIndex', 'findLast', 'findLastIndex', 'flat',
    'flatMap', 'forEach', 'includes', 'indexOf', 'join', 'lastIndexOf', 'map', 'reduce', 'reduceRight', 'slice',
    'some', 'toLocaleString', 'toReversed', 'toSorted', 'toSpliced', 'with']) {
    guard(name, false);
  }
  for (const name of ['copyWithin', 'fill', 'reverse', 'shift', 'sort', 'splice', 'unshift']) guard(name, true);

  const api = {};
  api.access = freeze({
    deny(reason) {
      host('deny', toString(reason === undefined ? '' : reason));
      return api;
    },
  });
  // A claim whose value has no JSON form is not emitted (and drops what an earlier call set).
  api.idToken = freeze({
    setCustomClaim(name, value) {
      const call = 'api.idToken.setCustomClaim';
      host('id_claim', text(call, 'name', name), jsonOf(call, value));
      return api;
    },
  });
  api.accessToken = freeze({
    setCustomClaim(name, value) {
      const call = 'api.accessToken.setCustomClaim';
      host('at_claim', text(call, 'name', name), jsonOf(call, value));
      return api;
    },
    addScope(scope) {
      host('add_scope', text('api.accessToken.addScope', 'scope', scope));
      return api;
    },
    removeScope(scope) {
      host('remove_scope', text('api.accessToken.removeScope', 'scope', scope));
      return api;
    },
  });
  // `null`, or a value with no JSON form (`undefined`, a function), deletes the key when the
  // metadata is persisted after the flow.
  const metadata = (op, call) =>
    function (key, value) {
      const json = jsonOf(call, value);
      host(op, text(call, 'key', key), json === undefined ? 'null' : json);
      return api;
    };
  api.user = freeze({
    setAppMetadata: metadata('app_metadata', 'api.user.setAppMetadata'),
    setUserMetadata: metadata('user_metadata', 'api.user.setUserMetadata'),
  });
  // Per execution: shared by the actions of one login, gone when the login ends. Keys and
  // values are strings, as Auth0's are.
  api.cache = freeze({
    get(key) {
      const v = host('cache_get', text('api.cache.get', 'key', key));
      return v === undefined || v === null ? undefined : { value: parse(v) };
    },
    set(key, value) {
      const err = host('cache_set', text('api.cache.set', 'key', key), text('api.cache.set', 'value', value));
      return err ? { type: 'error', code: err } : { type: 'success' };
    },
    delete(key) {
      host('cache_delete', text('api.cache.delete', 'key', key));
      return { type: 'success' };
    },
  });
  api.multifactor = freeze({
    enable(provider) {
      // Requiring a second factor that cannot be enforced must not let the login through.
      if (provider === 'none') return api;
      unsupported(`api.multifactor.enable('${toString(provider)}')`);
    },
  });
  api.authentication = freeze({
    challengeWith() { unsupported('api.authentication.challengeWith'); },
    challengeWithAny() { unsupported('api.authentication.challengeWithAny'); },
    enrollWith() { unsupported('api.authentication.enrollWith'); },
    enrollWithAny() { unsupported('api.authentication.enrollWithAny'); },
    recordMethod() { unsupported('api.authentication.recordMethod'); },
    setPrimaryUser() { unsupported('api.authentication.setPrimaryUser'); },
  });
  api.redirect = freeze({
    canRedirect() { return false; },
    sendUserTo() { unsupported('api.redirect.sendUserTo (redirects from Actions)'); },
    encodeToken() { unsupported('api.redirect.encodeToken'); },
    validateToken() { unsupported('api.redirect.validateToken'); },
  });
  // Session and refresh-token lifetimes are the tenant's; revoking denies this login.
  api.session = freeze({
    revoke(reason) { host('deny', toString(reason === undefined ? 'session revoked' : reason)); return api; },
    setExpiresAt() { return api; },
    setIdleExpiresAt() { return api; },
    setMetadata() { return api; },
    deleteMetadata() { return api; },
    evictMetadata() { return api; },
  });
  api.refreshToken = freeze({
    revoke(reason) { host('deny', toString(reason === undefined ? 'refresh token revoked' : reason)); return api; },
    setExpiresAt() { return api; },
    setIdleExpiresAt() { return api; },
    setMetadata() { return api; },
    deleteMetadata() { return api; },
  });
  api.prompt = freeze({
    render() { unsupported('api.prompt.render (Forms)'); },
  });
  // SAML is not served here: every setter is accepted and has no effect.
  api.samlResponse = new Proxy({}, { get: () => () => api });
  api.validation = freeze({
    error(code, message) { host('deny', toString(message === undefined ? code : message)); return api; },
  });
  api.rules = freeze({
    wasExecuted() { return false; },
  });
  freeze(api);

  // Node's util.format, roughly: strings as they are, errors by their stack, the rest as JSON.
  const show = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return v.stack ? `${v.name}: ${v.message}\n${v.stack}` : `${v.name}: ${v.message}`;
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
      return toString(v);
    }
    try {
      const s = stringify(v);
      return s === undefined ? toString(v) : s;
    } catch (e) {
      return toString(v);
    }
  };
  const line = (level) =>
    function (...args) {
      let text = '';
      for (let i = 0; i < args.length; i++) text += (i ? ' ' : '') + show(args[i]);
      host('log', level, text);
    };
  const console = freeze({
    log: line('info'),
    info: line('info'),
    debug: line('debug'),
    warn: line('warn'),
    error: line('error'),
    trace: line('debug'),
  });

  // CommonJS: only the module's own `exports`; nothing can be required.
  const require = function (name) {
    throw new Error(`require('${toString(name)}'): modules are not available to Gatehouse actions`);
  };
  return { api, console, require };
})
