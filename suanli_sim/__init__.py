"""Suanli's simulator: a fake NVML that answers as the driver does, scenarios, simulated hosts
and a fleet of them. It imports the agent (`agent.app.build` over `agent.app.Parts`); the agent
never imports it."""
