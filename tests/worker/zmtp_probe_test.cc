// Tests PeerZmtpMechanism against real ZeroMQ sockets.
#include "worker/zmtp_probe.h"

#include <zmq.h>

#include <string>

#include "gtest/gtest.h"
#include "zmq.hpp"

namespace drover {
namespace {

// A ROUTER bound to an ephemeral loopback port; its endpoint as bound.
std::string BindRouter(zmq::socket_t& router) {
  router.bind("tcp://127.0.0.1:0");
  return router.get(zmq::sockopt::last_endpoint);
}

TEST(ZmtpProbe, ReadsTheMechanismOfAPlainPeer) {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  absl::StatusOr<std::string> mechanism = PeerZmtpMechanism(BindRouter(router), absl::Seconds(5));
  ASSERT_TRUE(mechanism.ok()) << mechanism.status();
  EXPECT_EQ(*mechanism, "NULL");
}

TEST(ZmtpProbe, ReadsTheMechanismOfACurveServer) {
  char public_key[41], secret_key[41];
  ASSERT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::curve_server, 1);
  router.set(zmq::sockopt::curve_secretkey, std::string(secret_key));
  absl::StatusOr<std::string> mechanism = PeerZmtpMechanism(BindRouter(router), absl::Seconds(5));
  ASSERT_TRUE(mechanism.ok()) << mechanism.status();
  EXPECT_EQ(*mechanism, "CURVE");
}

TEST(ZmtpProbe, SaysWhenNothingListens) {
  std::string endpoint;
  {
    zmq::context_t context;
    zmq::socket_t router(context, zmq::socket_type::router);
    endpoint = BindRouter(router);
  }  // closed: the port is free again
  EXPECT_EQ(PeerZmtpMechanism(endpoint, absl::Seconds(5)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PeerZmtpMechanism("inproc://x", absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover
