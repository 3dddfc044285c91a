// Module coordinator: see its headers.
