// Module engine: see its headers.
