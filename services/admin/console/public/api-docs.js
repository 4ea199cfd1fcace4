/* global document */
// Renders /api/docs (OpenAPI 3.1) as a page. A separate file, not an inline script, so the
// console's Content-Security-Policy (script-src 'self') applies unchanged; text only, no HTML
// from the document is ever interpreted (textContent everywhere).
const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
};
const json = (value) => el('pre', {}, JSON.stringify(value, null, 2));
const details = (summary, ...content) => el('details', {}, el('summary', {}, summary), ...content);

function operation(path, method, op) {
  const section = el(
    'section',
    { class: 'operation', id: op.operationId ?? `${method}-${path}` },
    el('h2', {}, el('span', { class: `method method-${method}` }, method.toUpperCase()), path),
    el('p', {}, op.summary ?? ''),
    el('p', {}, op.description ?? ''),
  );
  if ((op.parameters ?? []).length > 0) {
    const table = el(
      'table',
      {},
      el('tr', {}, el('th', {}, 'parameter'), el('th', {}, 'in'), el('th', {}, 'schema')),
    );
    for (const p of op.parameters) {
      table.append(
        el(
          'tr',
          {},
          el('td', {}, p.name + (p.required ? ' (required)' : '')),
          el('td', {}, p.in),
          el('td', {}, json(p.schema)),
        ),
      );
    }
    section.append(table);
  }
  const body = op.requestBody?.content?.['application/json']?.schema;
  if (body !== undefined) section.append(details('Request body (JSON Schema)', json(body)));
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    const schema = response.content?.['application/json']?.schema;
    section.append(
      details(
        `${status}: ${response.description ?? ''}`,
        schema === undefined ? el('p', {}, 'no body') : json(schema),
      ),
    );
  }
  return section;
}

async function render() {
  const main = document.getElementById('operations');
  try {
    const response = await fetch('/api/docs', { headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const doc = await response.json();
    main.replaceChildren(
      el('p', {}, doc.info?.description ?? ''),
      details('Error body (every error)', json(doc.components?.schemas?.Error ?? {})),
      ...Object.entries(doc.paths).flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, op]) => operation(path, method, op)),
      ),
    );
  } catch (error) {
    main.textContent = `Could not load /api/docs: ${error instanceof Error ? error.message : String(error)}`;
  }
}

void render();
