#!/usr/bin/perl
# Sends exactly one ICMP (IPv4) or ICMPv6 echo request from a lab namespace: icmp-echo.pl 4|6 SRC DST ID TAG
# Raw sockets need root, which the lab has; perl-base (Socket) is on every Debian system, so nothing is installed.
# The echo identifier is the flow's key in conntrack (IPv4 SNAT may rewrite it); the payload carries the flow's tag.
use strict;
use warnings;
use Socket qw(AF_INET AF_INET6 SOCK_RAW inet_pton pack_sockaddr_in pack_sockaddr_in6);

my ($family, $src, $dst, $id, $tag) = @ARGV;
die "usage: icmp-echo.pl 4|6 SRC DST ID TAG\n" unless defined $tag;

sub checksum {
  my ($data) = @_;
  $data .= "\0" if length($data) % 2;
  my $sum = 0;
  $sum += $_ for unpack('n*', $data);
  $sum = ($sum >> 16) + ($sum & 0xffff) while $sum >> 16;
  return (~$sum) & 0xffff;
}

my $sock;
if ($family eq '6') {
  socket($sock, AF_INET6, SOCK_RAW, 58) or die "socket: $!\n";
  bind($sock, pack_sockaddr_in6(0, inet_pton(AF_INET6, $src))) or die "bind $src: $!\n";
  # The kernel fills in the ICMPv6 checksum (it covers the IPv6 pseudo-header).
  my $packet = pack('C C n n n a*', 128, 0, 0, $id, 1, $tag);
  send($sock, $packet, 0, pack_sockaddr_in6(0, inet_pton(AF_INET6, $dst))) or die "send: $!\n";
} else {
  socket($sock, AF_INET, SOCK_RAW, 1) or die "socket: $!\n";
  bind($sock, pack_sockaddr_in(0, inet_pton(AF_INET, $src))) or die "bind $src: $!\n";
  my $packet = pack('C C n n n a*', 8, 0, 0, $id, 1, $tag);
  $packet = pack('C C n n n a*', 8, 0, checksum($packet), $id, 1, $tag);
  send($sock, $packet, 0, pack_sockaddr_in(0, inet_pton(AF_INET, $dst))) or die "send: $!\n";
}
print "{\"ok\":true}\n";
