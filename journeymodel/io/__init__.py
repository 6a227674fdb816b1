"""What leaves and enters the process as files: model files (netCDF) and their checks, safe output
writing, numbers formatted for people.
"""
