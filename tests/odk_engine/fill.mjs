#!/usr/bin/env node
// Fill an XForm with ODK's own web form engine (@getodk/xforms-engine) and
// print the submission payload (the `xml_submission_file` part) to stdout.
//
//   node fill.mjs FORM.xml ANSWERS.json [MEDIA_DIR]
//
// ANSWERS.json is an object keyed by field *name* (not path):
//   - a scalar is set on the first field with that name outside repeats
//     (inside a repeat instance: the first one in that instance, outside
//     nested repeats);
//   - a list of objects fills the repeat with that name: one repeat instance
//     per object, each object filled the same way (nested repeats recurse);
//   - select_multiple: a list of choice codes; select_one: one code;
//   - geopoint: "lat lon alt acc".
// Form attachments (jr://file-csv/villages.csv, jr://file/x.xml, ...) are
// served from MEDIA_DIR by file name.
//
// Every answer that the engine would not keep (unknown field, read-only or
// non-relevant field, choice not offered, value the type cannot hold,
// constraint or required violation, missing instanceID) is reported on
// stderr and the exit status is non-zero. stdout carries only the payload.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { JSDOM } from 'jsdom';

// stdout is reserved for the payload: route any console chatter to stderr.
for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => console.error(...args);
}

class HarnessError extends Error {}

const fail = (message) => {
  throw new HarnessError(message);
};

// ---------------------------------------------------------------------------
// Browser-like globals the engine's bundle expects, set before importing it.

const installDomGlobals = () => {
  const { window } = new JSDOM('<!DOCTYPE html><html><head></head><body></body></html>', {
    contentType: 'text/html',
  });
  const names = [
    'document',
    'DOMParser',
    'XMLSerializer',
    'Node',
    'Element',
    'Document',
    'XMLDocument',
    'DocumentFragment',
    'Attr',
    'CharacterData',
    'Text',
    'CDATASection',
    'Comment',
    'ProcessingInstruction',
    'NodeList',
    'NodeFilter',
    'XPathResult',
    'XPathEvaluator',
    'XPathExpression',
    'HTMLElement',
  ];
  for (const name of names) {
    if (window[name] !== undefined) {
      globalThis[name] = window[name];
    }
  }
  // The bundled (emscripten) tree-sitter loader reads `__dirname` under Node.
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@getodk/xforms-engine');
  globalThis.__dirname = path.dirname(entry);
};

// ---------------------------------------------------------------------------
// Form attachments.

const CONTENT_TYPES = {
  '.csv': 'text/csv',
  '.xml': 'text/xml',
  '.geojson': 'application/geo+json',
};

const makeAttachmentFetcher = (mediaDir) => async (url) => {
  const href = String(url.href ?? url);
  const rawName = String(url.pathname ?? href).split('/').pop() ?? '';
  const fileName = path.basename(decodeURIComponent(rawName));
  const filePath = mediaDir ? path.join(mediaDir, fileName) : null;
  if (!filePath || !fs.existsSync(filePath)) {
    console.error(
      `fill.mjs: form attachment ${href} not found` +
        (mediaDir ? ` (looked for ${filePath})` : ' (no MEDIA_DIR given)'),
    );
    return new Response('', { status: 404, statusText: 'Not Found' });
  }
  const contentType = CONTENT_TYPES[path.extname(fileName).toLowerCase()] ?? 'application/octet-stream';
  return new Response(fs.readFileSync(filePath), {
    status: 200,
    headers: { 'content-type': contentType },
  });
};

// ---------------------------------------------------------------------------
// Walking and filling the engine's node tree.

const nodeName = (node) => {
  const qualified = node.definition?.qualifiedName?.localName;
  if (qualified) {
    return qualified;
  }
  const last = String(node.currentState.reference).split('/').pop() ?? '';
  return last.replace(/\[.*\]$/, '').replace(/^.*:/, '');
};

const ref = (node) => node.currentState.reference;

const isPlainObject = (value) =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

const show = (value) => JSON.stringify(value);

const INTEGER_PATTERN = /^[+-]?\d+$/;
const DECIMAL_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

const toScalarString = (field, value) => {
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number' || typeof value === 'bigint') {
    return String(value);
  }
  if (typeof value === 'boolean') {
    return value ? 'true' : 'false';
  }
  fail(`field '${field}': expected a scalar value, got ${show(value)}`);
};

class Filler {
  constructor() {
    this.problems = [];
    this.answered = []; // [{ name, node, value }]
  }

  problem(message) {
    this.problems.push(message);
  }

  // Fill one scope (the root, or one repeat instance) from an answers object.
  fillScope(scopeNode, answers, scopeLabel) {
    const used = new Set();
    const visit = (parent) => {
      for (const child of parent.currentState.children ?? []) {
        const name = nodeName(child);
        const type = child.nodeType;
        const wanted = Object.hasOwn(answers, name) && !used.has(name);
        if (type.startsWith('repeat-range')) {
          // Repeats are only entered through an answer naming them.
          if (wanted) {
            used.add(name);
            this.fillRepeat(child, name, answers[name]);
          }
          continue;
        }
        if (type === 'group') {
          visit(child);
          continue;
        }
        if (wanted) {
          used.add(name);
          try {
            this.setLeaf(child, name, answers[name]);
          } catch (error) {
            if (!(error instanceof HarnessError)) throw error;
            this.problem(error.message);
          }
        }
      }
    };
    visit(scopeNode);
    for (const key of Object.keys(answers)) {
      if (!used.has(key)) {
        this.problem(
          `no field or repeat named '${key}' in ${scopeLabel} ` +
            "(answers are keyed by field name; fields inside a repeat go in that repeat's list)",
        );
      }
    }
  }

  fillRepeat(range, name, value) {
    if (!Array.isArray(value) || !value.every(isPlainObject)) {
      this.problem(`repeat '${name}' (${ref(range)}): expected a list of objects, got ${show(value)}`);
      return;
    }
    const wanted = value.length;
    const existing = range.currentState.children.length;
    if (range.nodeType === 'repeat-range:uncontrolled') {
      if (existing > wanted) {
        range.removeInstances(wanted, existing - wanted);
      } else if (existing < wanted) {
        range.addInstances(existing - 1, wanted - existing);
      }
    } else if (existing !== wanted) {
      this.problem(
        `repeat '${name}' (${ref(range)}) has its count set by the form (jr:count): ` +
          `it has ${existing} instance(s) at this point, the answers give ${wanted}`,
      );
      return;
    }
    const instances = range.currentState.children;
    if (instances.length !== wanted) {
      this.problem(`repeat '${name}': engine holds ${instances.length} instance(s), expected ${wanted}`);
      return;
    }
    value.forEach((answers, index) => {
      const instance = instances[index];
      this.fillScope(instance, answers, `repeat instance ${ref(instance)}`);
    });
  }

  setLeaf(node, name, value) {
    const where = `field '${name}' (${ref(node)})`;
    const type = node.nodeType;
    if (type === 'model-value' || type === 'note') {
      fail(`${where} has no input control (${type === 'note' ? 'note' : 'calculated/hidden'}); it cannot be answered`);
    }
    if (type === 'upload') {
      fail(`${where} is a file upload; the harness does not fill uploads`);
    }
    const state = node.currentState;
    if (state.readonly) {
      fail(`${where} is read-only at this point; it cannot be answered`);
    }
    if (!state.relevant) {
      fail(`${where} is not relevant (hidden by its relevant expression) when answered in form order`);
    }

    switch (type) {
      case 'select':
        this.setSelect(node, where, value);
        break;
      case 'rank':
        this.setRank(node, where, value);
        break;
      case 'trigger':
        node.setValue(Boolean(value));
        break;
      case 'input':
      case 'range':
        this.setInput(node, where, value);
        break;
      default:
        fail(`${where}: unsupported node type '${type}'`);
    }
    this.answered.push({ name, node, value });
  }

  setSelect(node, where, value) {
    const multiple = node.selectType === 'select';
    let codes;
    if (value === null) {
      codes = [];
    } else if (Array.isArray(value)) {
      if (!multiple && value.length > 1) {
        fail(`${where} is a select_one; got several choices ${show(value)}`);
      }
      codes = value.map((code) => toScalarString(where, code));
    } else {
      const text = toScalarString(where, value);
      codes = multiple ? text.split(/\s+/).filter(Boolean) : [text];
    }
    const available = node.currentState.valueOptions.map((item) => item.value);
    const missing = codes.filter((code) => !available.includes(code));
    if (missing.length > 0) {
      const shown = available.slice(0, 30).map(show).join(', ');
      fail(
        `${where}: choice(s) ${missing.map(show).join(', ')} not available ` +
          `(the form offers ${available.length}: ${shown}${available.length > 30 ? ', ...' : ''})`,
      );
    }
    node.selectValues(codes);
    const selected = [...node.currentState.value];
    const same = selected.length === new Set(codes).size && codes.every((code) => selected.includes(code));
    if (!same) {
      fail(`${where}: engine kept ${show(selected)} after selecting ${show(codes)}`);
    }
  }

  setRank(node, where, value) {
    if (!Array.isArray(value)) {
      fail(`${where} is a rank question; expected a list of codes, got ${show(value)}`);
    }
    const codes = value.map((code) => toScalarString(where, code));
    const available = node.currentState.valueOptions.map((item) => item.value);
    const missing = codes.filter((code) => !available.includes(code));
    if (missing.length > 0) {
      fail(`${where}: choice(s) ${missing.map(show).join(', ')} not available (offered: ${available.map(show).join(', ')})`);
    }
    node.setValues(codes);
    const kept = [...node.currentState.value];
    if (kept.join(' ') !== codes.join(' ')) {
      fail(`${where}: engine kept ${show(kept)} after ranking ${show(codes)}`);
    }
  }

  setInput(node, where, value) {
    const valueType = node.valueType;
    if (value === null || value === '') {
      node.setValue(valueType === 'string' ? '' : null);
      return;
    }
    let text;
    if (valueType === 'geopoint' && Array.isArray(value)) {
      text = value.map((part) => toScalarString(where, part)).join(' ');
    } else {
      text = toScalarString(where, value);
    }
    if (valueType === 'int' && !INTEGER_PATTERN.test(text.trim())) {
      fail(`${where} is an integer field; ${show(value)} is not an integer`);
    }
    if (valueType === 'decimal' && !DECIMAL_PATTERN.test(text.trim())) {
      fail(`${where} is a decimal field; ${show(value)} is not a number`);
    }
    node.setValue(node.nodeType === 'range' ? Number(text) : text);
    const stored = node.currentState.instanceValue;
    if (stored === '') {
      fail(`${where}: the engine rejected ${show(value)} for type '${valueType}' (stored value is blank)`);
    }
    if (valueType === 'string' && stored !== text) {
      fail(`${where}: engine stored ${show(stored)} instead of ${show(text)}`);
    }
    if (valueType === 'int' && BigInt(stored) !== BigInt(text.trim())) {
      fail(`${where}: engine stored ${show(stored)} instead of ${show(value)} (out of the int range?)`);
    }
  }
}

// Describe validation violations, naming the field and its current value.
const describeViolations = (violations, rootNode) => {
  const byReference = new Map();
  const index = (node) => {
    byReference.set(node.currentState.reference, node);
    for (const child of node.currentState.children ?? []) index(child);
  };
  index(rootNode);
  return violations.map((entry) => {
    const reference = entry.reference;
    const node = byReference.get(reference);
    const name = node ? nodeName(node) : reference.split('/').pop();
    const { condition, message } = entry.violation;
    const text = message?.asString ? ` — "${message.asString}"` : '';
    const current = node?.currentState?.instanceValue;
    if (condition === 'constraint') {
      return `constraint failed for field '${name}' (${reference}) with value ${show(current)}${text}`;
    }
    if (condition === 'required') {
      return `required field '${name}' (${reference}) has no answer${text}`;
    }
    return `${condition} violation on field '${name}' (${reference})${text}`;
  });
};

const findInstanceId = (xml) => {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const root = doc.documentElement;
  for (const child of Array.from(root.children)) {
    if (child.localName === 'meta') {
      for (const inner of Array.from(child.children)) {
        if (inner.localName === 'instanceID') return inner.textContent;
      }
    }
    if (child.localName === 'instanceID') return child.textContent;
  }
  return null;
};

// ---------------------------------------------------------------------------

const main = async (argv) => {
  if (argv.length < 2 || argv.length > 3) {
    fail('usage: node fill.mjs FORM.xml ANSWERS.json [MEDIA_DIR]');
  }
  const [formPath, answersPath, mediaDir] = argv;
  const formXml = fs.readFileSync(formPath, 'utf8');
  let answers;
  try {
    answers = JSON.parse(fs.readFileSync(answersPath, 'utf8'));
  } catch (error) {
    fail(`cannot read answers ${answersPath}: ${error.message}`);
  }
  if (!isPlainObject(answers)) {
    fail('ANSWERS.json must hold a JSON object keyed by field name');
  }
  if (mediaDir && !fs.statSync(mediaDir, { throwIfNoEntry: false })?.isDirectory()) {
    fail(`MEDIA_DIR ${mediaDir} is not a directory`);
  }

  installDomGlobals();
  const { createInstance } = await import('@getodk/xforms-engine');

  const preloadProperties = {};
  if (process.env.ODK_DEVICE_ID) preloadProperties.deviceID = process.env.ODK_DEVICE_ID;
  if (process.env.ODK_USERNAME) preloadProperties.username = process.env.ODK_USERNAME;
  if (process.env.ODK_EMAIL) preloadProperties.email = process.env.ODK_EMAIL;

  let instance;
  try {
    instance = await createInstance(formXml, {
      form: {
        fetchFormAttachment: makeAttachmentFetcher(mediaDir ? path.resolve(mediaDir) : null),
        missingResourceBehavior: 'ERROR',
      },
      instance: { preloadProperties },
    });
  } catch (error) {
    const inner = Array.isArray(error?.errors) && error.errors.length
      ? error.errors.map((e) => e?.message ?? String(e)).join('; ')
      : null;
    const detail = error?.message || inner || String(error);
    const hint = /h:title/.test(detail) ? ' (ODK Web Forms requires an <h:title> in <h:head>)' : '';
    fail(`the engine could not load the form: ${detail}${inner && inner !== detail ? ` (${inner})` : ''}${hint}`);
  }
  if (instance.formResult?.warnings) {
    console.error('fill.mjs: form loaded with warnings:', instance.formResult.warnings);
  }
  const root = instance.root;

  const filler = new Filler();
  filler.fillScope(root, answers, 'the form outside repeats');

  const violations = describeViolations(root.validationState.violations, root);
  const problems = [...filler.problems, ...violations];
  if (problems.length > 0) {
    fail(`${problems.length} answer problem(s):\n  - ${problems.join('\n  - ')}`);
  }

  const payload = await root.prepareInstancePayload({ payloadType: 'monolithic' });
  if (payload.status !== 'ready') {
    const detail = describeViolations(payload.violations ?? [], root);
    fail(`payload not ready (status ${payload.status}):\n  - ${detail.join('\n  - ')}`);
  }
  if (payload.submissionMeta?.encryptionKey) {
    console.error('fill.mjs: note: the form declares base64RsaPublicKey; the payload below is the plaintext instance');
  }
  const file = payload.data[0].get('xml_submission_file');
  if (!file) {
    fail('payload has no xml_submission_file');
  }
  const bytes = Buffer.from(await file.arrayBuffer());
  const instanceId = findInstanceId(bytes.toString('utf8'));
  if (!instanceId) {
    fail(
      'the payload has no instanceID value: the engine generated none ' +
        '(the form needs <bind nodeset=".../meta/instanceID" jr:preload="uid"/> or a uuid() calculate)',
    );
  }
  return bytes;
};

main(process.argv.slice(2)).then(
  (bytes) => {
    process.stdout.write(bytes, () => process.exit(0));
  },
  (error) => {
    if (error instanceof HarnessError) {
      console.error(`fill.mjs: ${error.message}`);
    } else {
      console.error('fill.mjs: unexpected error:', error?.stack ?? error);
    }
    process.exit(1);
  },
);
