"""The console's pages, one module per area; ``console.router`` mounts them under /ui."""
