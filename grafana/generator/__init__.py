"""The dashboard generator: one module per dashboard, shared builders in panels/board/promql."""
