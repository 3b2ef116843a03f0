"""drover's Python package: `pip install ./python` (into a venv made with
--system-site-packages, on top of Debian's python3-grpcio, python3-protobuf
and python3-cloudpickle; --no-build-isolation uses Debian's setuptools). The
protocol modules (drover.v1) are generated from ../proto with protoc and
gRPC's Python plugin (Debian's protobuf-compiler and protobuf-compiler-grpc)
while building; they are never kept in the source tree."""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "proto")


class BuildWithProtocol(build_py):
    def run(self):
        super().run()
        plugin = shutil.which("grpc_python_plugin")
        if plugin is None or shutil.which("protoc") is None:
            raise SystemExit("protoc and grpc_python_plugin are needed (Debian: protobuf-compiler, "
                             "protobuf-compiler-grpc; scripts/install-deps installs them)")
        out = os.path.abspath(self.build_lib)
        subprocess.run(["protoc", "-I", PROTO, f"--python_out={out}", f"--grpc_python_out={out}",
                        f"--plugin=protoc-gen-grpc_python={plugin}", "drover/v1/common.proto",
                        "drover/v1/service.proto"], check=True)
        open(os.path.join(out, "drover", "v1", "__init__.py"), "a").close()


setup(
    name="drover",
    version="0.1.0",
    description="drover's Python client: a multiprocessing.Pool whose calls run on a drover cluster",
    packages=["drover"],
    python_requires=">=3.9",
    install_requires=["grpcio", "protobuf", "cloudpickle"],
    cmdclass={"build_py": BuildWithProtocol},
)
