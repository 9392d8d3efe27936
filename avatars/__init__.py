"""Avatar library: versioned avatar folders with their authorization (license) records."""
