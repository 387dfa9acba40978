/** GET /openapi.json and GET /docs (a self-contained page rendering the same document; no CDN). */
import type { FastifyInstance } from 'fastify';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qwen-image-server API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;text-align:left}
code{background:#f3f3f3;padding:0 .2rem}</style></head>
<body><h1 id="title">API</h1><p id="desc"></p><p><a href="/playground">Try it in the playground</a>: every field, live progress, history.</p><h2>Endpoints</h2><ul id="paths"></ul>
<h2>POST /v1/images/generations — request fields (JSON)</h2><table id="fields"><thead><tr><th>field</th><th>type and rules</th><th>default</th><th>description</th></tr></thead><tbody></tbody></table>
<h2>POST /v1/images/edits — request fields (multipart/form-data)</h2><p id="edit-desc"></p><table id="edit-fields"><thead><tr><th>field</th><th>type and rules</th><th>default</th><th>description</th></tr></thead><tbody></tbody></table>
<p>Errors: <code>{"error": {"message", "type", "param", "code"}}</code>. Machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p>
<script>
function rules(s){if(!s)return'';const alt=s.anyOf||s.oneOf;if(alt)return alt.map(rules).join(' <b>or</b> ');const r=[];
if(s.format==='binary')r.push('file');else if(s.type==='array'&&s.items&&s.items.format==='binary')r.push('files');else if(s.type)r.push(s.type);if(s.enum)r.push('one of '+s.enum.map(v=>'<code>'+v+'</code>').join(', '));
if(s.minimum!==undefined)r.push('≥ '+s.minimum);if(s.maximum!==undefined)r.push('≤ '+s.maximum);if(s.multipleOf)r.push('multiple of '+s.multipleOf);
if(s.maxLength!==undefined)r.push('≤ '+s.maxLength+' chars');if(s.minItems!==undefined)r.push(s.minItems+'–'+s.maxItems+' items');
if(s.properties)r.push('{'+Object.entries(s.properties).map(([k,v])=>k+': '+rules(v)).join('; ')+'}');return r.join(', ');}
fetch('/openapi.json').then(r=>r.json()).then(doc=>{document.getElementById('title').textContent=doc.info.title+' '+doc.info.version;
document.getElementById('desc').textContent=doc.info.description;const ul=document.getElementById('paths');
for(const[p,ops]of Object.entries(doc.paths))for(const[m,op]of Object.entries(ops)){const li=document.createElement('li');li.innerHTML='<code>'+m.toUpperCase()+' '+p+'</code> — '+(op.summary||'');ul.appendChild(li);}
function fill(req,selector){const tb=document.querySelector(selector);
for(const[k,s]of Object.entries(req.properties)){const tr=document.createElement('tr');
tr.innerHTML='<td><code>'+k+'</code>'+(req.required.includes(k)?' (required)':'')+'</td><td>'+rules(s)+'</td><td>'+(s.default!==undefined?'<code>'+JSON.stringify(s.default)+'</code>':'')+'</td><td></td>';
tr.lastChild.textContent=s.description||'';tb.appendChild(tr);}}
fill(doc.components.schemas.GenerationRequest,'#fields tbody');const edit=doc.components.schemas.EditRequest;
document.getElementById('edit-desc').textContent=edit.description;fill(edit,'#edit-fields tbody');});
</script></body></html>`;

export function registerDocsRoutes(app: FastifyInstance, deps: { openapi: Record<string, unknown> }): void {
  app.get('/openapi.json', async () => deps.openapi);
  app.get('/docs', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
}
