"""The run registry: projects, experiments, runs and sweeps as declared in configs/projects/.

Torch-free: Snakemake imports this while it parses the workflow (and every cluster job parses
it again), and the command line edits the registry through it. Modules here may import only
the standard library, YAML and jsonschema, and the torch-free leaves of dltemplate (errors,
records, layout, schemas: the registry's schema is schemas/registry.yaml); never torch,
Lightning, matplotlib or pandas, and never the example code.
"""
