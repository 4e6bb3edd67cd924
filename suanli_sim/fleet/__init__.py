"""The fleet simulator: `suanli-agent simulate` serves N simulated nodes from one process
(or a few worker processes), each on its own loopback port. docs/simulator.md tells more.

Each node is the agent's real collector set (GPU over its own fake NVML, health, activity, job
accounting, power, host) sampled by the real `Sampler` and rendered by the real `Renderer`;
what is shared is the machinery around them: one sampling thread for every node of a process,
one event loop for every port, one temporary tree for every node's fake procfs. Modules:

- `topology`: halls, racks, hostnames and ports of the fleet
- `mix`: which node runs what (roles, multi-node training jobs), deterministic from a seed
- `scenarios`, `pods`, `faults`: a node's role turned into a fake NVML scenario document
- `fleet`: the whole plan, its summary, its scenarios as YAML files
- `hostsim`: simulated host CPU, memory and RAPL readers
- `node`: one simulated node (collectors, sampler, renderer)
- `scheduler`: samples every node once per interval, staggered, on one thread
- `http`: every node's port served from one asyncio loop
- `runtime`: building, sampling and serving a slice of the fleet in this process
- `workers`: worker processes for fleets larger than one Python thread can sample
- `filesd`: the Prometheus file_sd targets of the fleet
- `cli`: `suanli-agent simulate` itself
"""
