"""Everything that touches a real engine: probing, rendering, launching, benchmarking."""
