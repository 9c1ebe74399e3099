"""Workers declared in a workers file (`Context.workers_file`), with no Python.

`config` is the file's schema and loader, `outputs` and `rules` how a declared worker's
output is shaped and checked, `build` makes each declaration a `WorkerSpec`, and each kind
that talks to something else has its own module: `agent` (LangChain tools), `mcp`,
`remote_graph` and `a2a`.
"""
